"""``pht train run-local``: one train against a synthetic cohort and a real station API.

Train authors iterate long before a hospital runs their image, so this runs the train's own
entrypoint (``python -m <package>``) as a local process against the parts of a station that
decide its fate: a real ``pht api`` (gateway in the policy's query mode, disclosure gate,
provenance) on 127.0.0.1 with a generated cohort in embedded Oxigraph. The operator is not
running, so this module plays its part through the wire contract, exactly as the operator does:
the Train is judged by :func:`pht_contract.validation.validate_object` and
:func:`pht_contract.evaluation.evaluate`, a random token is minted and only its hash is
registered with the approved query hashes and a policy snapshot, and the process receives the
environment and files of the operator's own Job and Secret (:mod:`pht_operator.runs`), each
mount path mapped to a local directory. After the process exits the completion is reported and
the gate's decision is read back; a released result is downloaded the way a requester would.

This is **not** a station: the data are synthetic, nobody approves anything, and a local process
is not isolated the way a pod is (it shares this machine's network, files and user).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from pht_contract.conditions import Reason
from pht_contract.evaluation import Decision, evaluate
from pht_contract.hashing import canonical_json, sha256_hex, spec_hash, token_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.quantities import QuantityError, parse_quantity
from pht_contract.sparql import query_hash
from pht_contract.trains import Train, TrainSpec
from pht_contract.validation import Problem, find_policy, load_documents, validate_object
from pht_contract.wire import (
    HEALTH_PATH,
    PROVENANCE_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    ProvenanceEvent,
    ProvenanceKind,
    RunCompletion,
    TrainRegistration,
    TrainState,
)
from pht_operator.names import run_names
from pht_operator.runs import RunRequest, build_job, build_secret
from pht_operator.settings import OperatorSettings
from pht_operator.stationapi import approved_queries
from pht_sandbox.localrunner import BundledTrain, bundled_trains, pod_environment
from pht_station_api.disclosure.trust import image_digest

Obj = dict[str, Any]
Say = Callable[[str], None]

REPO: Final = Path(__file__).resolve().parents[2]
SDK_DIR: Final = REPO / "trains" / "sdk"
MANIFESTS: Final = Path("examples") / "trains"
POLICY: Final = Path("examples") / "policies" / "station-policy.yaml"
#: Who the provenance chain names for the operator's part in a local run.
ACTOR: Final = "pht-train-run-local"
#: The failure line the SDK prints last on stderr (``pht_train.failures.FAILURE_PREFIX``).
FAILURE_PREFIX: Final = "pht-train-failure: "
STARTUP_SECONDS: Final = 60.0
POLL_SECONDS: Final = 0.25
#: The local station shows a run's progress at this tick (seconds).
LOCAL_PROGRESS_TICK_SECONDS: Final = 1
REQUEST_SECONDS: Final = 30.0
#: Address space beyond the memory limit: interpreters reserve far more than they touch.
ADDRESS_SPACE_HEADROOM: Final = 2 * 1024**3
LOG_TAIL_LINES: Final = 15


class RunLocalError(Exception):
    """A problem with the input or the local station; printed as ``error: …`` (no traceback)."""


class NotATrain(RunLocalError):
    """The directory holds no train package with a ``__main__`` module."""


class ManifestRefused(RunLocalError):
    """The Train fails the schema, CEL rules or the station policy; one problem per field."""

    def __init__(self, manifest: Path, problems: list[Problem]) -> None:
        super().__init__(f"{manifest}: the station would refuse this Train")
        self.problems = problems


class StationUnavailable(RunLocalError):
    """The local ``pht api`` did not start or answered with an error."""


@dataclass(frozen=True)
class LocalRunOptions:
    directory: Path
    manifest: Path | None = None
    policy: Path | None = None
    out: Path | None = None
    patients: int = 250
    seed: int = 0
    #: Replaces the manifest's ``spec.parameters`` (a JSON object as text).
    parameters: str | None = None


@dataclass(frozen=True)
class AdmittedTrain:
    """The Train as admission parsed it, with the names the station keys its records by."""

    namespace: str
    name: str
    spec: TrainSpec
    decision: Decision


@dataclass(frozen=True)
class QueryRun:
    """One audited query, as the provenance chain recorded it (hash, never the text)."""

    name: str | None
    query_hash: str | None
    outcome: str
    reason: str
    rows: int
    patients: int


@dataclass
class LocalRunOutcome:
    train_name: str
    release: str
    rule: str | None = None
    findings: list[str] = field(default_factory=list)
    suppressed_cells: int = 0
    exit_code: int | None = None
    failure_reason: str | None = None
    log_tail: list[str] = field(default_factory=list)
    queries: list[QueryRun] = field(default_factory=list)
    result: Obj | None = None
    out: Path | None = None

    @property
    def train_failed(self) -> bool:
        return self.exit_code != 0


# -- the train and its manifest ---------------------------------------------------------------


def find_train(directory: Path) -> BundledTrain:
    """The package ``<dir name with underscores>`` with a ``__main__`` module, run by ``-m``."""
    if not directory.is_dir():
        raise NotATrain(f"{directory} is not a directory")
    directory = directory.resolve()
    for bundled in bundled_trains().values():
        if bundled.directory.resolve() == directory:
            return bundled
    module = directory.name.replace("-", "_")
    if not (directory / module / "__main__.py").is_file():
        raise NotATrain(
            f"{directory} is not a train: expected a package {module}/ with a __main__.py "
            f"(a station runs it as `python -m {module}`)"
        )
    return BundledTrain(directory.name, directory, module)


def in_checkout(relative: Path) -> Path:
    """``relative`` below the working directory if it is there, else below this checkout."""
    return relative if relative.exists() else REPO / relative


def default_manifest(train: BundledTrain) -> Path:
    return in_checkout(MANIFESTS / f"{train.name}.yaml")


def default_policy() -> Path:
    return in_checkout(POLICY)


def load_policy(path: Path) -> StationPolicySpec:
    try:
        policy = find_policy(load_documents(path))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RunLocalError(f"cannot read the policy: {exc}") from None
    if policy is None:
        raise RunLocalError(f"{path} holds no valid StationPolicy")
    return policy


def load_manifest(path: Path, parameters: str | None) -> Obj:
    """The one Train in ``path``, with ``spec.parameters`` replaced when given."""
    try:
        documents = load_documents(path)
    except FileNotFoundError:
        raise RunLocalError(f"no Train manifest at {path} (give one with --manifest)") from None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RunLocalError(f"cannot read the manifest: {exc}") from None
    trains = [d for d in documents if d.get("kind") == "Train"]
    if len(trains) != 1:
        raise RunLocalError(f"{path} must hold exactly one Train (found {len(trains)})")
    train = trains[0]
    if parameters is not None:
        try:
            value = json.loads(parameters)
        except ValueError as exc:
            raise RunLocalError(f"--parameters is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise RunLocalError("--parameters must be a JSON object")
        spec = train.get("spec")
        if isinstance(spec, dict):
            spec["parameters"] = json.dumps(value, separators=(",", ":"))
    return train


def admit(document: Obj, manifest: Path, policy: StationPolicySpec) -> AdmittedTrain:
    """What admission decides: every problem with its field path, or the admitted Train."""
    problems = validate_object(document, policy)
    if problems:
        raise ManifestRefused(manifest, problems)
    train = Train.model_validate(document)
    metadata = train.metadata
    return AdmittedTrain(
        namespace=str(metadata.get("namespace") or "default"),
        name=str(metadata["name"]),
        spec=train.spec,
        decision=evaluate(train.spec, policy),
    )


# -- the local station API --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalStation:
    """A ``pht api`` process on 127.0.0.1 with a synthetic cohort and a temporary state dir.

    Holds three credentials, each random and written to a file: the operator's (internal
    listener), a steward's (to read the audited queries and the gate's findings) and a
    requester's (to download a released result), the latter two in ``local`` identity mode.
    """

    def __init__(self, root: Path, policy_file: Path) -> None:
        self.root = root
        self.policy_file = policy_file
        self.operator_token = secrets.token_urlsafe(32)
        self.steward_token = secrets.token_urlsafe(32)
        self.requester_token = secrets.token_urlsafe(32)
        self.internal = f"http://127.0.0.1:{free_port()}"
        self.external = f"http://127.0.0.1:{free_port()}"
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(timeout=REQUEST_SECONDS)

    def load_cohort(self, patients: int, seed: int, graph: str) -> None:
        from pht_station_api.cohorts import cohort_bytes
        from pht_station_api.triplestores.loading import load_rdf

        source = io.BytesIO(cohort_bytes(patients, seed))
        load_rdf(self.root / "store", source, "ntriples", graph)

    def _write_credentials(self) -> tuple[Path, Path]:
        operator = self.root / "operator-token"
        operator.write_text(self.operator_token, encoding="utf-8")
        identities = self.root / "identities.yaml"
        users = [
            {"username": "local-steward", "groups": ["pht-stewards"], "token": self.steward_token},
            {
                "username": "local-author",
                "groups": ["pht-requesters"],
                "token": self.requester_token,
            },
        ]
        rules = [
            {"groups": ["pht-stewards"], "verbs": ["release"]},
            {"groups": ["pht-requesters"], "verbs": ["get"]},
        ]
        identities.write_text(yaml.safe_dump({"users": users, "rules": rules}), encoding="utf-8")
        for path in (operator, identities):
            path.chmod(0o600)
        return operator, identities

    def start(self) -> None:
        operator, identities = self._write_credentials()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHT_API_")}
        env["PHT_API_IDENTITY_MODE"] = "local"
        env["PHT_API_LOCAL_IDENTITIES_FILE"] = str(identities)
        # Synthetic data only, so no need for the station's coarse progress tick: a short one
        # keeps the author's progress lines prompt.
        env["PHT_API_PROGRESS_TICK_SECONDS"] = str(LOCAL_PROGRESS_TICK_SECONDS)
        command = [
            sys.executable, "-m", "pht_cli.main", "api",
            "--store", str(self.root / "store"), "--state-dir", str(self.root / "state"),
            "--policy", str(self.policy_file), "--operator-token-file", str(operator),
            "--host", "127.0.0.1", "--station-name", "run-local",
            "--internal-port", self.internal.rsplit(":", 1)[1],
            "--external-port", self.external.rsplit(":", 1)[1],
        ]  # fmt: skip
        log = (self.root / "api.log").open("wb")
        self._process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if self._client.get(self.internal + HEALTH_PATH, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        tail = (self.root / "api.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise StationUnavailable("the local station API did not start: " + " | ".join(tail))

    def stop(self) -> None:
        self._client.close()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def _call(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            answer = self._client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise StationUnavailable(f"the local station API failed: {exc}") from None
        if answer.status_code >= 400:
            try:
                body = answer.json()
                detail = f"{body.get('reason')}: {body.get('message')}"
            except (ValueError, AttributeError):
                detail = f"HTTP {answer.status_code}"
            raise StationUnavailable(f"the local station API refused {method} {url}: {detail}")
        return answer

    def operator(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._call(method, self.internal + path, self.operator_token, **kwargs)

    def steward(self, path: str) -> httpx.Response:
        return self._call("GET", self.external + path, self.steward_token)

    def requester(self, path: str) -> httpx.Response:
        return self._call("GET", self.external + path, self.requester_token)

    def state(self, uid: str) -> TrainState:
        body = self.operator("GET", TRAIN_STATE_PATH.format(uid=uid)).json()
        return TrainState.model_validate(body)

    def record(
        self, kind: ProvenanceKind, train: AdmittedTrain, uid: str, step: str, **details: Any
    ) -> None:
        event = ProvenanceEvent(
            event_id=f"{uid}:{kind.value}:{step}",
            kind=kind,
            train_uid=uid,
            namespace=train.namespace,
            name=train.name,
            actor=ACTOR,
            at=iso(datetime.now(UTC)),
            details=details,
        )
        self.operator("POST", PROVENANCE_PATH, json=event.wire())


@contextlib.contextmanager
def local_station(root: Path, policy_file: Path) -> Iterator[LocalStation]:
    station = LocalStation(root, policy_file)
    try:
        yield station
    finally:
        station.stop()


# -- the run, as the operator would drive it --------------------------------------------------


def reviewed_locally(policy: StationPolicySpec, image: str) -> StationPolicySpec:
    """The policy with this image's digest reviewed for automatic release.

    A local run skips the steward's review of the image as it skips approval, so the gate's
    checks alone decide what the author sees. At a station the result of an image whose digest
    the steward has not listed in ``autoReleaseImageDigests`` waits for a steward.
    """
    digest = image_digest(image)
    if digest is None:
        return policy
    disclosure = policy.disclosure.model_copy(
        update={
            "auto_release_image_digests": [*policy.disclosure.auto_release_image_digests, digest]
        }
    )
    return policy.model_copy(update={"disclosure": disclosure})


def register(
    station: LocalStation, train: AdmittedTrain, policy: StationPolicySpec
) -> tuple[RunRequest, str]:
    """Mint the token, register its hash (idempotent ``PUT`` keyed by uid) like the operator."""
    uid = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    spec, decision = train.spec, train.decision
    policy = reviewed_locally(policy, spec.image)
    request = RunRequest(
        uid=uid,
        namespace=train.namespace,
        name=train.name,
        spec=spec,
        spec_hash=spec_hash(spec),
        policy=policy,
        timeout_seconds=decision.timeout_seconds,
        names=run_names(uid, train.name),
    )
    expires = datetime.now(UTC) + timedelta(
        seconds=decision.timeout_seconds + policy.timeouts.pending_seconds
    )
    registration = TrainRegistration(
        uid=uid,
        namespace=request.namespace,
        name=request.name,
        spec_hash=request.spec_hash,
        image=spec.image,
        image_runs_as_built=(not spec.command and not spec.args and spec.input_artifact is None),
        token_hash=token_hash(token),
        approved_query_hashes=list(decision.approved_query_hashes),
        approved_queries=approved_queries(spec, decision.approved_query_hashes),
        allowed_graphs=list(spec.graphs or policy.data_access.allowed_graphs),
        policy=policy,
        policy_hash=sha256_hex(canonical_json(policy.wire())),
        requester_name=spec.requester.name,
        requester_organisation=spec.requester.organisation,
        expires_at=iso(expires),
    )
    station.operator("PUT", TRAIN_REGISTRATION_PATH.format(uid=uid), json=registration.wire())
    station.record(
        ProvenanceKind.REGISTRATION, train, uid, "registered", specHash=request.spec_hash
    )
    return request, token


def _local_environment(job: Obj, secret: Obj, run_dir: Path, train: BundledTrain) -> dict[str, str]:
    """The Job's environment with each mount path mapped to a local directory."""
    secrets = {secret["metadata"]["name"]: secret.get("data") or {}}
    return pod_environment(job["spec"]["template"]["spec"], secrets, run_dir, train)


def _memory_limit(container: Obj) -> int | None:
    limits = container.get("resources", {}).get("limits", {})
    if "nvidia.com/gpu" in limits:
        return None  # GPU drivers map far more address space than any limit allows
    try:
        return int(parse_quantity(str(limits.get("memory")))) if limits.get("memory") else None
    except QuantityError:
        return None


def _failure_reason(log: Path) -> tuple[str | None, list[str]]:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        if line.startswith(FAILURE_PREFIX):
            return line[len(FAILURE_PREFIX) :].strip(), lines[-LOG_TAIL_LINES:]
    return None, lines[-LOG_TAIL_LINES:]


def run_process(
    station: LocalStation,
    request: RunRequest,
    token: str,
    train: BundledTrain,
    run_dir: Path,
    say: Say,
) -> tuple[int | None, Path]:
    """Run the train (retries like the Job's ``backoffLimit``); exit code, None at the deadline."""
    settings = OperatorSettings(
        run_api_url=station.internal, run_api_port=int(station.internal.rsplit(":", 1)[1])
    )
    job = build_job(request, settings)
    secret = build_secret(request, token, settings)
    env = _local_environment(job, secret, run_dir, train)
    container = job["spec"]["template"]["spec"]["containers"][0]
    memory = _memory_limit(container)
    command = [sys.executable, "-m", train.module, *container.get("args", [])]
    if container.get("command"):
        say(f"note: spec.command is ignored locally; running python -m {train.module}")
    attempts = int(job["spec"].get("backoffLimit") or 0) + 1
    deadline = time.monotonic() + float(job["spec"].get("activeDeadlineSeconds") or 3600)
    log = run_dir / "train.log"

    def limit() -> None:  # runs in the child, before exec
        if memory:
            cap = memory + ADDRESS_SPACE_HEADROOM
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    code: int | None = None
    seen: tuple[int, str] | None = None
    for attempt in range(1, attempts + 1):
        say(f"run     attempt {attempt}: python -m {train.module} (local process, not a pod)")
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=env.get("HOME", str(run_dir)),
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=limit,  # the memory limit must be set in the child
                start_new_session=True,
            )
        try:
            while (code := process.poll()) is None and time.monotonic() < deadline:
                seen = _report_progress(station, request.uid, seen, say)
                time.sleep(POLL_SECONDS)
            if code is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        time.sleep(LOCAL_PROGRESS_TICK_SECONDS)  # the last report shows at the next tick
        seen = _report_progress(station, request.uid, seen, say)
        if code == 0 or code is None:
            break
    return code, log


def _report_progress(
    station: LocalStation, uid: str, seen: tuple[int, str] | None, say: Say
) -> tuple[int, str] | None:
    progress = station.state(uid).progress
    if progress is None:
        return seen
    current = (progress.percent, progress.stage.value)
    if current != seen:
        say(f"progress {progress.percent:>3}%  {progress.stage.value}")
    return current


def complete(station: LocalStation, train: AdmittedTrain, uid: str, code: int | None) -> TrainState:
    """Report the Job's outcome as the operator does; the gate decides on the final upload."""
    if code == 0:
        reason = Reason.RUN_COMPLETED.value
    elif code is None:
        reason = Reason.DEADLINE_EXCEEDED.value
    else:
        reason = Reason.BACKOFF_LIMIT_EXCEEDED.value
    station.record(ProvenanceKind.RUN, train, uid, "finished", reason=reason)
    completion = RunCompletion(job_succeeded=code == 0, reason=reason)
    station.operator("PUT", TRAIN_COMPLETION_PATH.format(uid=uid), json=completion.wire())
    return station.state(uid)


def read_story(station: LocalStation, train: AdmittedTrain) -> tuple[list[QueryRun], int]:
    """From the train's provenance story: its audited queries (named by the manifest's
    hashes) and the number of cells the gate suppressed."""
    names = {query_hash(q.sparql): q.name for q in train.spec.queries or []}
    path = f"/stewards/results/{train.namespace}/{train.name}/provenance"
    queries: list[QueryRun] = []
    suppressed = 0
    for record in station.steward(path).json()["records"]:
        details = record["details"]
        if record["kind"] == ProvenanceKind.RELEASE.value:
            suppressed = int(details.get("suppressedCells") or 0)
        if record["kind"] != ProvenanceKind.QUERY.value:
            continue
        digest = details.get("queryHash")
        queries.append(
            QueryRun(
                name=names.get(digest) if isinstance(digest, str) else None,
                query_hash=digest if isinstance(digest, str) else None,
                outcome=str(details.get("outcome")),
                reason=str(details.get("reason")),
                rows=int(details.get("rows") or 0),
                patients=int(details.get("distinctPatients") or 0),
            )
        )
    return queries, suppressed


def gate_findings(station: LocalStation, train: AdmittedTrain) -> list[str]:
    path = f"/stewards/results/{train.namespace}/{train.name}"
    findings = station.steward(path).json().get("findings") or []
    return [str(f) for f in findings]


def clear_previous(out: Path) -> None:
    """Remove what an earlier local run saved in ``out``, so no stale table is read as new."""
    try:
        previous = json.loads((out / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    names = [t.get("name") for t in previous.get("tables", []) if isinstance(t, dict)]
    files = ["result.json", "run.json", "train.log"]
    files += [f"{name}.csv" for name in names if isinstance(name, str) and "/" not in name]
    for name in files:
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()


def save_result(station: LocalStation, train: AdmittedTrain, out: Path) -> Obj:
    """The released manifest as a requester downloads it, plus one CSV per table."""
    base = f"/results/{train.namespace}/{train.name}"
    result: Obj = station.requester(base).json()
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for table in result.get("tables", []):
        csv = station.requester(f"{base}/tables/{table['name']}").text
        (out / f"{table['name']}.csv").write_text(csv, encoding="utf-8")
    return result


def summary(outcome: LocalRunOutcome) -> Obj:
    return {
        "note": "local run on synthetic data, not a station",
        "train": outcome.train_name,
        "release": outcome.release,
        "rule": outcome.rule,
        "findings": outcome.findings,
        "suppressedCells": outcome.suppressed_cells,
        "exitCode": outcome.exit_code,
        "failureReason": outcome.failure_reason,
        "queries": [
            {
                "name": q.name,
                "queryHash": q.query_hash,
                "outcome": q.outcome,
                "reason": q.reason,
                "rows": q.rows,
                "distinctPatients": q.patients,
            }
            for q in outcome.queries
        ],
    }


def run_local(options: LocalRunOptions, say: Say) -> LocalRunOutcome:
    """Admit, register, run, complete, read the decision; save what a requester would get."""
    bundle = find_train(options.directory)
    manifest = options.manifest or default_manifest(bundle)
    policy_file = options.policy or default_policy()
    policy = load_policy(policy_file)
    document = load_manifest(manifest, options.parameters)
    train = admit(document, manifest, policy)
    if options.patients < 1:
        raise RunLocalError("--patients must be at least 1")
    out = options.out or Path("pht-run-local") / train.name
    graphs = list(train.spec.graphs or policy.data_access.allowed_graphs)
    if not graphs:
        raise RunLocalError("the policy allows no graph to hold the synthetic cohort")
    say(f"train   {train.name}: python -m {bundle.module} from {bundle.directory}")
    hashes = len(train.decision.approved_query_hashes)
    approval = (
        " (approval by a steward skipped: local run)" if train.decision.requires_approval else ""
    )
    say(f"policy  {policy_file}: admitted, {hashes} approved query hash(es){approval}")
    say(
        "review  the gate's checks decide alone here; at a station the result waits for a "
        "steward unless the policy lists this image's digest for automatic release"
    )
    clear_previous(out)
    with tempfile.TemporaryDirectory(prefix="pht-run-local-") as work:
        root = Path(work)
        with local_station(root, policy_file) as station:
            station.load_cohort(options.patients, options.seed, graphs[0])
            say(
                f"cohort  {options.patients} synthetic patients (seed {options.seed}) "
                f"in {graphs[0]}"
            )
            station.start()
            say(f"station local pht api at {station.internal} (gateway, disclosure gate)")
            request, token = register(station, train, policy)
            run_dir = root / "run"
            run_dir.mkdir()
            code, log = run_process(station, request, token, bundle, run_dir, say)
            state = complete(station, train, request.uid, code)
            reason, tail = _failure_reason(log) if log.exists() else (None, [])
            outcome = LocalRunOutcome(
                train_name=train.name,
                release=state.release.value,
                rule=state.rule,
                exit_code=code,
                failure_reason=reason,
                log_tail=tail if code != 0 else [],
                findings=gate_findings(station, train),
                out=out,
            )
            outcome.queries, outcome.suppressed_cells = read_story(station, train)
            if state.release.value == "Released":
                outcome.result = save_result(station, train, out)
            station.operator("DELETE", TRAIN_REGISTRATION_PATH.format(uid=request.uid))
        out.mkdir(parents=True, exist_ok=True)
        if log.exists():
            shutil.copyfile(log, out / "train.log")
    (out / "run.json").write_text(json.dumps(summary(outcome), indent=1) + "\n", encoding="utf-8")
    return outcome
