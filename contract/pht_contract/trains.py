"""The Train custom resource: an algorithm image that travels to this station's data."""

import json
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from pht_contract.aggregates import MAX_AGGREGATES, AggregateKind, AggregateSpec
from pht_contract.base import (
    DNS_LABEL,
    ApiModel,
    DnsLabel,
    Iri,
    Quantity,
    Sha256Hex,
    ShortText,
    Timestamp,
)
from pht_contract.conditions import Condition, Summary

IMAGE_PATTERN = (
    r"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
MAX_PARAMETERS_BYTES = 16 * 1024
#: The largest signed image review a Train may carry (as :mod:`pht_contract.signedreviews`).
MAX_SIGNED_REVIEW_BYTES = 16 * 1024


class NamedQuery(ApiModel):
    """A SPARQL query the train will run; its normalised hash is what approval covers."""

    name: DnsLabel
    """The query's name; the run finds it as `<name>.rq` in PHT_QUERIES_DIR."""
    sparql: str = Field(min_length=1, max_length=16384)
    """SPARQL 1.1 SELECT/ASK text; its normalised hash is what an approval covers."""


class InputArtifact(ApiModel):
    """An artifact the train brings from a previous station, pinned by content hash."""

    sha256: Sha256Hex
    """Content hash of the artifact."""
    source: str | None = Field(default=None, max_length=512)
    """Where the artifact came from (e.g. the previous station), for the record."""


class TrainResources(ApiModel):
    """What the run may use; each amount is both request and limit, within the policy's maxima."""

    cpu: Quantity = "1"
    """CPU request and limit (Kubernetes quantity)."""
    memory: Quantity = "2Gi"
    """Memory request and limit."""
    ephemeral_storage: Quantity = "1Gi"
    """Scratch space (HOME, TMPDIR) request and limit."""
    gpu: int = Field(default=0, ge=0, le=16)
    """Number of `nvidia.com/gpu` devices."""
    gpu_model: str | None = Field(default=None, min_length=1, max_length=128)
    """Required GPU model (node label `nvidia.com/gpu.product`)."""
    min_gpu_memory_mib: int | None = Field(default=None, ge=1, le=1048576)
    """Minimum GPU memory in MiB (node label `nvidia.com/gpu.memory`)."""


class Requester(ApiModel):
    """Who asks for the run (the creator's identity is recorded separately by the station)."""

    name: ShortText
    """Full name of the requesting researcher."""
    organisation: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)
    """Requesting organisation; must be in the station policy's list."""
    contact: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    """Contact e-mail address."""


StringList = Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=16)]


class TrainSpec(ApiModel):
    """What the Train runs, on which data, with which resources, for whom and why."""

    # Every field is immutable except ``suspend``; the CRD generator emits the CEL rule.
    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (
            "has(self.queries) || has(self.graphs)",
            "a Train must name the SPARQL queries it runs (queries) or the graphs it reads "
            "(graphs)",
        ),
    )
    immutable_except: ClassVar[frozenset[str]] = frozenset({"suspend"})

    image: str = Field(pattern=IMAGE_PATTERN, min_length=1, max_length=512)
    """Algorithm image; pin it by digest (`@sha256:`) whenever approval is required."""
    command: StringList | None = None
    """Overrides the image entrypoint."""
    args: StringList | None = None
    """Arguments to the entrypoint."""
    parameters: str | None = Field(default=None, max_length=MAX_PARAMETERS_BYTES)
    """A JSON object, as a string of at most 16 KiB, given to the run as PHT_PARAMETERS."""
    queries: list[NamedQuery] | None = Field(
        default=None, max_length=32, json_schema_extra={"x-list-map-keys": ["name"]}
    )
    """The SPARQL queries the run may send, by name (each must be allowed by the policy)."""
    graphs: list[Iri] | None = Field(default=None, max_length=32)
    """Named graphs the train reads (each must be allowed by the policy)."""
    aggregates: list[AggregateSpec] | None = Field(
        default=None, max_length=MAX_AGGREGATES, json_schema_extra={"x-list-map-keys": ["name"]}
    )
    """Aggregates the station computes itself from an approved query's answer (counts, summary
    statistics, Kaplan–Meier tables, model rounds); released after the station's rules
    whatever the image."""
    input_artifact: InputArtifact | None = None
    """An artifact brought from a previous station, pinned by sha256."""
    signed_review: str | None = Field(
        default=None, min_length=1, max_length=MAX_SIGNED_REVIEW_BYTES
    )
    """A review of the image digest signed by a reviewer (a DSSE envelope, as JSON text, of an
    in-toto statement; `pht reviews sign` makes one). Results are released without a steward
    only when the station's policy trusts the reviewer's key (trustedReviewers)."""
    resources: TrainResources = Field(default_factory=TrainResources)
    timeout_seconds: int | None = Field(default=None, ge=1, le=604800)
    """Run deadline in seconds; the policy default when unset."""
    retries: int = Field(default=0, ge=0, le=5)
    """Pod retries of the run (Job backoffLimit)."""
    requester: Requester
    purpose: str = Field(min_length=1, max_length=2048)
    """Purpose of use, for the steward and the provenance record."""
    suspend: bool = False
    """The only mutable field: true cancels a queued or running run (token revoked)."""

    @field_validator("parameters")
    @classmethod
    def _parameters_are_a_json_object(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value.encode()) > MAX_PARAMETERS_BYTES:
            raise ValueError(f"parameters exceed {MAX_PARAMETERS_BYTES} bytes")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"parameters are not valid JSON: {exc.msg} at {exc.pos}") from exc
        if not isinstance(parsed, dict):
            raise ValueError("parameters must be a JSON object")
        return value

    @model_validator(mode="after")
    def _needs_queries_or_graphs(self) -> "TrainSpec":
        if not self.queries and not self.graphs:
            raise ValueError(
                "a Train must name the SPARQL queries it runs (queries) or the graphs it reads "
                "(graphs)"
            )
        if self.queries:
            names = [q.name for q in self.queries]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"query names must be unique; repeated: {', '.join(duplicates)}")
        if self.aggregates:
            names = [a.name for a in self.aggregates]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"aggregate names must be unique; repeated: {', '.join(repeated)}")
            model_kinds = {AggregateKind.GLM_ROUND, AggregateKind.COX_ROUND}
            if sum(a.kind in model_kinds for a in self.aggregates) > 1:
                raise ValueError(
                    "a Train declares at most one model round (GlmRound or CoxRound): each "
                    "round is one Train, counted by its approval"
                )
            known = {q.name for q in self.queries or []}
            unknown = sorted({a.query for a in self.aggregates} - known)
            if unknown:
                raise ValueError(
                    f"aggregates name queries the Train does not declare: {', '.join(unknown)}"
                )
        return self

    @property
    def image_digest(self) -> str | None:
        """``sha256:…`` when the image is pinned by digest."""
        _, _, digest = self.image.partition("@")
        return digest or None

    @property
    def image_repository(self) -> str:
        """The image without tag or digest, e.g. ``registry.example.org/team/km``."""
        name = self.image.split("@", 1)[0]
        last = name.rsplit("/", 1)
        if ":" in last[-1]:
            name = name.rsplit(":", 1)[0]
        return name

    @property
    def image_registry(self) -> str:
        first = self.image_repository.split("/", 1)[0]
        if "/" in self.image_repository and ("." in first or ":" in first or first == "localhost"):
            return first
        return "docker.io"


class ProgressStage(StrEnum):
    """The enumerated stages a run may report: no free text leaves the run this way."""

    STARTING = "Starting"
    QUERYING = "Querying"
    PREPROCESSING = "Preprocessing"
    COMPUTING = "Computing"
    TRAINING = "Training"
    EVALUATING = "Evaluating"
    UPLOADING = "Uploading"
    DONE = "Done"


class Progress(ApiModel):
    """The run's own report of its progress, mirrored from the station API."""

    percent: int = Field(ge=0, le=100)
    """How far the run says it is, 0 to 100."""
    stage: ProgressStage
    updated_at: Timestamp | None = None
    """When the run last reported progress."""


class RunRef(ApiModel):
    """Where the run lives in the run namespace."""

    namespace: DnsLabel
    """The station-owned namespace the run executes in."""
    job_name: str = Field(max_length=63)
    """Name of the run's Job."""
    job_uid: str | None = Field(default=None, max_length=64)
    """uid of the run's Job, recorded before anything depends on it."""
    secret_name: str | None = Field(default=None, max_length=253)
    """Name of the Secret holding the run's token."""


class ReleaseState(StrEnum):
    PENDING = "Pending"
    HELD = "Held"
    RELEASED = "Released"
    BLOCKED = "Blocked"
    NO_OUTPUT = "NoOutput"


class ResultSummary(ApiModel):
    """Filled only after release: nothing about a result is visible before that."""

    digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$", max_length=71)
    """sha256 of the released result."""
    size_bytes: int = Field(ge=0)
    """Size of the released result in bytes."""
    release_state: Literal["Released"] = "Released"
    """Always `Released`: a result is described only once released."""
    released_at: Timestamp | None = None
    """When the data steward or the disclosure gate released it."""


class TrainStatus(ApiModel):
    """What the station operator observed and decided; written by the operator only."""

    conditions: list[Condition] = Field(
        default_factory=list, max_length=16, json_schema_extra={"x-list-map-keys": ["type"]}
    )
    """The Train's `metav1.Condition`s: `Admitted`, `Approved`, `Running`, `Succeeded`, ..."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` this status describes."""
    summary: Summary | None = None
    """One word for `kubectl get trains`."""
    spec_hash: Sha256Hex | None = None
    """sha256 of the spec without `suspend`; approvals name it."""
    start_time: Timestamp | None = None
    """When the run's pod started."""
    completion_time: Timestamp | None = None
    """When the Train reached its terminal condition."""
    duration_seconds: int | None = Field(default=None, ge=0)
    """Seconds from start to completion."""
    attempts: int | None = Field(default=None, ge=0)
    """Pods started for the run so far."""
    progress: Progress | None = None
    """The progress the run last reported to the station API."""
    run: RunRef | None = None
    """Where the run lives, once its Job exists."""
    result: ResultSummary | None = None
    approved_by: list[Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=8
    )
    """The stewards whose approvals counted."""


class Train(ApiModel):
    api_version: str = Field(max_length=64)
    kind: Literal["Train"]
    metadata: dict[str, object]
    spec: TrainSpec
    status: TrainStatus | None = None
