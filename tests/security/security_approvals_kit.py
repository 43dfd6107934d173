"""The approvals attacker's bench: the real operator against the emulated cluster.

Reuses the operator tests' harness (tests/operator) so an attack here runs exactly the code
that runs Trains: the emulated API server (which, like a cluster without the CRD's rules,
lets a spec be edited), the simulated Job controller and the station API double.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

OPERATOR_TESTS = Path(__file__).resolve().parents[1] / "operator"
if str(OPERATOR_TESTS) not in sys.path:
    sys.path.insert(0, str(OPERATOR_TESTS))

from operator_harness import (  # noqa: E402
    DIGEST,
    REQUESTED_BY,
    RUN_NS,
    STATION_NS,
    Harness,
    condition,
    operator_settings,
    run_in_thread,
    train_body,
)
from stationapi_double import StationApiDouble  # noqa: E402

from pht_contract.sparql import query_hash  # noqa: E402
from pht_sandbox.emulator import (  # noqa: E402
    APPROVALS,
    JOBS,
    NAMESPACES,
    ClusterEmulator,
    write_kubeconfig,
)

Obj = dict[str, Any]

__all__ = [
    "APPROVALS",
    "DIGEST",
    "JOBS",
    "REQUESTED_BY",
    "RUN_NS",
    "STATION_NS",
    "Harness",
    "condition",
    "harness_fixture",
    "km_standing",
    "no_run_started",
    "train_body",
]


@pytest.fixture(name="harness")
async def harness_fixture(tmp_path: Path) -> AsyncIterator[Harness]:
    """The emulated cluster, Job controller, station API double and the real operator."""
    from pht_sandbox.jobcontroller import JobController

    cluster = ClusterEmulator(bookmark_interval=1.0)
    station = StationApiDouble()
    async with cluster.serving() as url, station.serving() as station_url:
        jobs = JobController(cluster)
        for namespace in (STATION_NS, RUN_NS):
            await cluster.create_object(NAMESPACES, {"metadata": {"name": namespace}})
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        bed = Harness(cluster, jobs, station, operator_settings(station_url), kubeconfig, url)
        try:
            async with run_in_thread(bed) as running:
                yield running
        finally:
            await jobs.stop()
            await cluster.close_watches()


def km_standing(name: str = "rounds", **scope: Any) -> Obj:
    """A standing approval that covers the example Kaplan-Meier Train of REQUESTED_BY."""
    sparql = train_body("x")["spec"]["queries"][0]["sparql"]
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    standing: Obj = {
        "imageDigest": DIGEST,
        "queryHashes": [query_hash(sparql)],
        "requesters": [REQUESTED_BY],
        "parameters": [
            {"name": "timePoints", "type": "array", "items": "integer", "maxItems": 8},
            {"name": "groupBy", "type": "string", "enum": ["overallStage"]},
        ],
        "maxRuns": 5,
        "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    standing.update(scope)
    return {
        "metadata": {"name": name, "namespace": STATION_NS},
        "spec": {"standing": standing, "approver": "steward@maastro.example"},
    }


def no_run_started(harness: Harness) -> bool:
    """Nothing ran: no Job in the run namespace and no registration at the station API."""
    return harness.cluster.list_objects(JOBS, RUN_NS) == [] and (
        harness.station.registration_puts == 0
    )
