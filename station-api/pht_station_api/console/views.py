"""What the console's pages show, built from Kubernetes objects and the result archive.

Pure functions from data to small view models; no I/O, no authorisation (the pages do both).
Result previews are built from the outgoing manifest only — what the gate would release — so
no page can show a row the gate withholds; suppressed cells are shown as marked positions.
"""

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from pydantic import ValidationError

from pht_contract import constants
from pht_contract.aggregates import AggregateResult, OutgoingResult
from pht_contract.approvalrecords import approval_refusal
from pht_contract.evaluation import check_query_facts, required_approvers
from pht_contract.manifests import ModelFile, PlotFile, ResultTable
from pht_contract.objects import Obj
from pht_contract.policies import DisclosurePolicy, StationPolicySpec
from pht_contract.sparqlformat import NotFormatted, format_query, reveal_hidden
from pht_station_api.console.plots import Plot, survival_plot
from pht_station_api.disclosure.png import InvalidPlot, png_size
from pht_station_api.disclosure.trust import image_digest, review_for, signed_review_check
from pht_station_api.results.records import ResultRecord


@dataclass(frozen=True)
class ConditionView:
    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class TrainRow:
    namespace: str
    name: str
    uid: str
    summary: str
    requester: str
    organisation: str
    image: str
    progress: str
    conditions: list[ConditionView]


@dataclass(frozen=True)
class QueryView:
    name: str
    #: The query as submitted: what runs, character for character.
    sparql: str
    verdict: str
    problems: list[str]
    #: The same query laid out for reading; empty when it is shown as written (``note`` says why).
    formatted: str = ""
    note: str = ""
    #: The query as submitted for display: characters that act unseen written as ``⟨U+XXXX⟩``.
    shown: str = ""


@dataclass(frozen=True)
class ApprovalRecordView:
    approver: str
    decision: str
    comment: str


#: The state shown for a valid signed review of a Train that does not run the image as built.
NOT_AS_BUILT: Final = "NotAsBuilt"


@dataclass(frozen=True)
class SignedReviewView:
    """A Train's signed image review as the station judges it now."""

    #: A :class:`~pht_contract.signedreviews.SignedReviewState` value.
    state: str
    reviewer: str = ""
    key_name: str = ""
    until: str = ""


@dataclass(frozen=True)
class PendingTrain:
    train: TrainRow
    purpose: str
    contact: str
    requested_by: str
    spec_hash: str
    digest: str | None
    reviewed_by: str | None
    signed_review: SignedReviewView | None
    resources: list[tuple[str, str]]
    queries: list[QueryView]
    parameters: str
    command: str
    args: str
    approvals: list[ApprovalRecordView]
    approvals_needed: int
    refusal: str
    admitted: bool


def _conditions(train: Obj) -> list[ConditionView]:
    return [
        ConditionView(
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason", "")),
            str(c.get("message", "")),
        )
        for c in (train.get("status") or {}).get("conditions") or []
    ]


def train_row(train: Obj) -> TrainRow:
    metadata = train.get("metadata") or {}
    spec = train.get("spec") or {}
    status = train.get("status") or {}
    requester = spec.get("requester") or {}
    progress = status.get("progress") or {}
    shown = f"{progress.get('percent', 0)}% {progress.get('stage', '')}".strip() if progress else ""
    return TrainRow(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        summary=str(status.get("summary") or "Pending"),
        requester=str(requester.get("name", "")),
        organisation=str(requester.get("organisation", "")),
        image=str(spec.get("image", "")),
        progress=shown,
        conditions=_conditions(train),
    )


def awaiting_approval(train: Obj) -> bool:
    return (train.get("status") or {}).get("summary") == "AwaitingApproval"


def _policy_spec(policy: Obj | None) -> StationPolicySpec | None:
    if policy is None:
        return None
    try:
        return StationPolicySpec.model_validate(policy.get("spec") or {})
    except ValidationError:
        return None


def _query_views(spec: Obj, policy: StationPolicySpec | None) -> list[QueryView]:
    views = []
    for index, query in enumerate(spec.get("queries") or []):
        text = str(query.get("sparql", ""))
        if policy is None:
            verdict, problems = "unknown", []
        else:
            found, _ = check_query_facts(text, policy.data_access, f"spec.queries[{index}].sparql")
            verdict = "refused" if found else "allowed"
            problems = [f"{v.message} [{v.reason}]" for v in found]
        try:
            formatted, note = format_query(text), ""
        except NotFormatted as refused:
            formatted, note = "", str(refused)
        views.append(
            QueryView(
                str(query.get("name", "")),
                text,
                verdict,
                problems,
                formatted,
                note,
                reveal_hidden(text),
            )
        )
    return views


def _recorded(approvals: list[Obj], train: Obj) -> list[ApprovalRecordView]:
    uid = (train.get("metadata") or {}).get("uid")
    spec_hash = (train.get("status") or {}).get("specHash")
    found = []
    for approval in approvals:
        spec = approval.get("spec") or {}
        target = spec.get("train") or {}
        if target.get("specHash") == spec_hash and target.get("uid") in (None, uid):
            found.append(
                ApprovalRecordView(
                    str(spec.get("approver", "")),
                    str(spec.get("decision", "Approve")),
                    str(spec.get("comment") or ""),
                )
            )
    return found


def _signed_review(
    policy: StationPolicySpec | None, spec: Obj, moment: datetime
) -> SignedReviewView | None:
    """How the station judges the Train's signed review now; without a valid policy no key is
    trusted. A valid one of a Train that changes the image's command (or brings an input
    artifact) is shown as such: the gate does not count it."""
    envelope = spec.get("signedReview")
    if not isinstance(envelope, str):
        return None
    disclosure = policy.disclosure if policy is not None else DisclosurePolicy()
    check = signed_review_check(disclosure, str(spec.get("image", "")), envelope, moment)
    if check is None:
        return None
    as_built = not (spec.get("command") or spec.get("args") or spec.get("inputArtifact"))
    return SignedReviewView(
        check.state.value if as_built or not check.counts else NOT_AS_BUILT,
        reviewer=check.review.review.reviewer if check.review is not None else "",
        key_name=check.signer.name if check.signer is not None else "",
        until=check.until or "",
    )


def pending_train(
    train: Obj, policy: Obj | None, approvals: list[Obj], now: datetime | None = None
) -> PendingTrain:
    """Everything a steward reads before deciding on one Train."""
    spec = train.get("spec") or {}
    requester = spec.get("requester") or {}
    resources = spec.get("resources") or {}
    policy_spec = _policy_spec(policy)
    image = str(spec.get("image", ""))
    moment = now or datetime.now(UTC)
    review = review_for(policy_spec.disclosure, image, moment) if policy_spec is not None else None
    annotations = (train.get("metadata") or {}).get("annotations") or {}
    requested_by = annotations.get(constants.ANNOTATION_REQUESTED_BY, "")
    parameters = spec.get("parameters")
    admitted = bool((train.get("status") or {}).get("specHash"))
    try:
        shown_parameters = (
            json.dumps(json.loads(parameters), indent=2, ensure_ascii=False) if parameters else ""
        )
    except (TypeError, ValueError, RecursionError):
        # Not JSON, or nested deeper than the parser goes: shown as the researcher wrote it.
        shown_parameters = str(parameters)
    return PendingTrain(
        train=train_row(train),
        purpose=str(spec.get("purpose", "")),
        contact=str(requester.get("contact", "")),
        requested_by=str(requested_by),
        spec_hash=str((train.get("status") or {}).get("specHash", "")),
        digest=image_digest(image),
        reviewed_by=review.reviewer if review is not None else None,
        signed_review=_signed_review(policy_spec, spec, moment),
        resources=[(str(k), str(v)) for k, v in sorted(resources.items())],
        queries=_query_views(spec, policy_spec),
        parameters=shown_parameters,
        command=" ".join(str(a) for a in spec.get("command") or []),
        args=" ".join(str(a) for a in spec.get("args") or []),
        approvals=_recorded(approvals, train),
        approvals_needed=required_approvers(policy_spec) if policy_spec is not None else 1,
        refusal=approval_refusal(train, policy) if admitted else "",
        admitted=admitted,
    )


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class CellView:
    text: str
    suppressed: bool = False


@dataclass(frozen=True)
class TablePreview:
    name: str
    source: str
    columns: list[str]
    rows: list[list[CellView]]
    cohort_size: int | None
    suppressed: int


@dataclass(frozen=True)
class ModelSummary:
    name: str
    format: str
    size_bytes: int
    sha256: str
    tensors: list[tuple[str, str, str]]
    note: str


@dataclass(frozen=True)
class PictureView:
    """A plot the algorithm drew, as the station re-encoded it: shown from its own route."""

    name: str
    title: str
    size_bytes: int
    width: int
    height: int


@dataclass(frozen=True)
class ResultDetail:
    namespace: str
    name: str
    release: str
    rule: str
    findings: list[str]
    attempts: int
    requested_by: str
    tables: list[TablePreview] = field(default_factory=list)
    statistics: list[tuple[str, str, int]] = field(default_factory=list)
    models: list[ModelSummary] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    aggregates: list[tuple[str, str, str]] = field(default_factory=list)
    earlier: list[tuple[str, str, str]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    pictures: list[PictureView] = field(default_factory=list)
    #: Where the differencing ledger looked for earlier results, and the audited cohort sizes.
    ledger_scopes: list[str] = field(default_factory=list)
    cohorts: list[int] = field(default_factory=list)


def _cell(value: object) -> CellView:
    if value is None:
        return CellView("", suppressed=True)
    return CellView(str(value))


def _table(
    table: ResultTable, source: str, suppressed_at: set[tuple[int, str | None]]
) -> TablePreview:
    names = [c.name for c in table.columns]
    rows = []
    suppressed = 0
    for index, row in enumerate(table.rows):
        cells = []
        for column, value in zip(names, row, strict=True):
            marked = (
                value is None
                or (index, column) in suppressed_at
                or (index, None) in (suppressed_at)
            )
            suppressed += marked
            cells.append(CellView("", True) if marked else _cell(value))
        rows.append(cells)
    return TablePreview(table.name, source, names, rows, table.cohort_size, suppressed)


def _safetensors(raw: bytes) -> list[tuple[str, str, str]]:
    """Tensor names, dtypes and shapes from a safetensors header; a header that is not an
    object of objects with a list ``shape`` (a hostile upload) is ``ValueError``."""
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + min(length, 1 << 20)])
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    tensors = []
    for name, info in sorted(header.items()):
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        shape = info.get("shape", [])
        if not isinstance(shape, list):
            raise ValueError("a tensor's shape is not a list")
        tensors.append((str(name), str(info.get("dtype", "")), "×".join(str(d) for d in shape)))
    return tensors


def _npy(raw: bytes) -> list[tuple[str, str, str]]:
    if not raw.startswith(b"\x93NUMPY"):
        raise ValueError("not an npy file")
    major = raw[6]
    width = 2 if major == 1 else 4
    (length,) = struct.unpack("<H" if width == 2 else "<I", raw[8 : 8 + width])
    header = raw[8 + width : 8 + width + length].decode("latin-1")
    # The header is a Python dict literal of strings, booleans and a tuple of ints.
    descr = header.split("'descr':")[1].split(",")[0].strip(" '")
    shape = header.split("'shape':")[1].split(")")[0].strip(" (")
    dims = [d.strip() for d in shape.split(",") if d.strip()]
    return [("array", descr, "×".join(dims) or "scalar")]


def model_summary(model: ModelFile) -> ModelSummary:
    """Format, size and, where the format says so cheaply, tensor names and shapes."""
    tensors: list[tuple[str, str, str]] = []
    note = ""
    try:
        raw = base64.b64decode(model.data_base64, validate=True)
        if model.format == "safetensors":
            tensors = _safetensors(raw)
        elif model.format == "npy":
            tensors = _npy(raw)
        elif model.format == "json":
            note = "json"
        else:
            note = model.format
    except (binascii.Error, ValueError, struct.error, IndexError, RecursionError):
        # RecursionError: a header nested deeper than the JSON parser goes.
        note = "unreadable"
        tensors = []
    return ModelSummary(model.name, model.format, model.size_bytes, model.sha256, tensors, note)


def picture_bytes(plot: PlotFile) -> bytes:
    """The plot's canonical PNG as the outgoing manifest holds it."""
    return base64.b64decode(plot.data_base64, validate=True)


def picture_view(plot: PlotFile) -> PictureView:
    data = picture_bytes(plot)
    try:
        width, height = png_size(data)
    except InvalidPlot:
        width, height = 0, 0
    return PictureView(plot.name, plot.title, len(data), width, height)


def _aggregate_tables(aggregate: AggregateResult) -> TablePreview | None:
    if aggregate.table is None:
        return None
    marks = {(cell.row, cell.column) for cell in aggregate.suppressed}
    return _table(aggregate.table, f"aggregate:{aggregate.name}", marks)


def result_detail(
    record: ResultRecord, outgoing: OutgoingResult | None, earlier: list[ResultRecord]
) -> ResultDetail:
    """A held result as a steward reviews it: findings, and the manifest as it would leave."""
    detail = ResultDetail(
        namespace=record.namespace,
        name=record.name,
        release=record.release.value,
        rule=record.rule or "",
        findings=list(record.findings),
        attempts=len(record.attempts),
        requested_by=record.requested_by or "",
        ledger_scopes=list(record.ledger_scopes),
        cohorts=list(record.cohorts),
        earlier=[
            (e.name, e.released_at or e.decided_at or "", e.rule or "")
            for e in sorted(earlier, key=lambda e: e.created_at)
        ],
    )
    if outgoing is None:
        return detail
    detail.tables.extend(_table(t, "train", set()) for t in outgoing.tables)
    drawn = list(outgoing.tables)
    for aggregate in outgoing.aggregates:
        preview = _aggregate_tables(aggregate)
        if preview is not None:
            detail.tables.append(preview)
        if aggregate.table is not None:
            drawn.append(aggregate.table)
        detail.aggregates.append((aggregate.name, aggregate.status.value, aggregate.rule or ""))
    detail.plots.extend(p for p in map(survival_plot, drawn) if p is not None)
    detail.statistics.extend((s.name, f"{s.value:g}", s.n) for s in outgoing.statistics)
    detail.models.extend(model_summary(m) for m in outgoing.models)
    detail.pictures.extend(picture_view(p) for p in outgoing.plots)
    detail.messages.extend(outgoing.messages)
    return detail
