"""What a rehearsal reports: the audited queries, the gate's decision, the saved result."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pht_contract.objects import Obj
from pht_contract.sparql import query_hash
from pht_contract.wire import ProvenanceKind
from pht_sandbox.rehearsal.inputs import AdmittedTrain
from pht_sandbox.rehearsal.stationprocess import StationApiProcess


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


def read_story(station: StationApiProcess, train: AdmittedTrain) -> tuple[list[QueryRun], int]:
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


def gate_findings(station: StationApiProcess, train: AdmittedTrain) -> list[str]:
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


def save_result(station: StationApiProcess, train: AdmittedTrain, out: Path) -> Obj:
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
