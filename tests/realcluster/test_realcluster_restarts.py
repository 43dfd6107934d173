"""Restart safety on the real API server: the real operator, under the chart's RBAC, is killed
with SIGKILL again and again while Trains are in flight; after the restarts every Train reaches
a terminal status, none is lost, and no Train ever had a second Job.

Jobs are counted from a watch opened before the first Train, so a Job created, deleted and
created again would be seen. Bounded: 16 Trains, 4 kills, at most 90 s to converge.
"""

import collections
import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realcluster_kube import (
    GROUP,
    OPERATOR_ACCOUNT,
    REQUESTS_NS,
    RUNS_NS,
    SYSTEM_NS,
    mint_token,
    token_kubeconfig,
    wait_for,
)
from test_realcluster_operator import (
    TRAINS,
    apply_train,
    start_operator,
    start_station_api,
)

from pht_contract import constants
from pht_sandbox.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow

TRAINS_IN_FLIGHT = 16
KILLS = 4
TERMINAL = ("Succeeded", "Failed")
POLICY = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/stationpolicies"


class JobWatch:
    """Counts Job ADDED events per Train uid in the run namespace, from a watch in a thread."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.added: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        with plane.client() as admin:
            listed = admin.get(f"/apis/batch/v1/namespaces/{RUNS_NS}/jobs").json()
        self._version = listed["metadata"]["resourceVersion"]
        for item in listed["items"]:
            self._count(item)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _count(self, job: dict[str, Any]) -> None:
        uid = (job["metadata"].get("labels") or {}).get(constants.LABEL_TRAIN_UID)
        if uid:
            self.added[uid] += 1

    def _run(self) -> None:
        path = f"/apis/batch/v1/namespaces/{RUNS_NS}/jobs"
        while not self._stop.is_set():
            params = {"watch": "true", "resourceVersion": self._version, "timeoutSeconds": "5"}
            with (
                self.plane.client(timeout=30) as admin,
                admin.stream("GET", path, params=params) as answer,
            ):
                for line in answer.iter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    body = event["object"]
                    assert event["type"] != "ERROR", body  # e.g. 410 Gone would hide Jobs
                    self._version = body["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        self._count(body)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def without_approval(control_plane: ControlPlane, chart: Path) -> Iterator[None]:
    """The chart's StationPolicy with approval mode None for this test, restored afterwards."""
    with control_plane.client() as admin:
        (policy,) = admin.get(POLICY).json()["items"]
        path = f"{POLICY}/{policy['metadata']['name']}"
        mode = policy["spec"]["approval"]["mode"]
        merge = {"Content-Type": "application/merge-patch+json"}
        patched = admin.patch(
            path, content=json.dumps({"spec": {"approval": {"mode": "None"}}}), headers=merge
        )
        assert patched.status_code == 200, patched.text
    try:
        yield
    finally:
        with control_plane.client() as admin:
            restored = admin.patch(
                path, content=json.dumps({"spec": {"approval": {"mode": mode}}}), headers=merge
            )
            assert restored.status_code == 200, restored.text


def storm_trains(plane: ControlPlane) -> list[dict[str, Any]]:
    with plane.client() as admin:
        items = admin.get(TRAINS).json()["items"]
    return [t for t in items if t["metadata"]["name"].startswith("storm-")]


@pytest.mark.timeout(240)
def test_sigkill_storm_on_the_real_api_server_loses_no_train_and_runs_none_twice(
    control_plane: ControlPlane, without_approval: None, tmp_path: Path
) -> None:
    rng = random.Random(20261130)
    api, api_url, _ = start_station_api(control_plane, tmp_path)
    kubeconfig = token_kubeconfig(
        control_plane,
        mint_token(control_plane, SYSTEM_NS, OPERATOR_ACCOUNT),
        OPERATOR_ACCOUNT,
        tmp_path / "operator.kubeconfig",
    )
    credential = tmp_path / "operator-credential"
    jobs = JobWatch(control_plane)
    operator, _ = start_operator(control_plane, tmp_path, api_url, credential, kubeconfig)
    in_flight_at_kill: list[int] = []
    try:
        for index in range(TRAINS_IN_FLIGHT):
            applied = apply_train(f"storm-{index:02d}", "researcher", control_plane)
            assert applied.returncode == 0, applied.stderr
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 2.5))
            in_flight_at_kill.append(
                sum(
                    (t.get("status") or {}).get("summary") not in TERMINAL
                    for t in storm_trains(control_plane)
                )
            )
            assert operator.process is not None and operator.alive(), operator.output()[-3000:]
            os.killpg(operator.process.pid, signal.SIGKILL)
            operator.process.wait(timeout=10)
            operator, _ = start_operator(control_plane, tmp_path, api_url, credential, kubeconfig)
        began = time.monotonic()

        def all_terminal() -> bool:
            trains = storm_trains(control_plane)
            return len(trains) == TRAINS_IN_FLIGHT and all(
                (t.get("status") or {}).get("summary") in TERMINAL for t in trains
            )

        wait_for(all_terminal, timeout=90, every=1.0)
        print(f"converged {time.monotonic() - began:.1f} s after the last restart")
        trains = storm_trains(control_plane)
        uids = {t["metadata"]["uid"] for t in trains}
        # Killed mid-work each time; nothing lost; one Job per Train, never a second one.
        assert all(count > 0 for count in in_flight_at_kill), in_flight_at_kill
        assert len(trains) == TRAINS_IN_FLIGHT
        time.sleep(1.0)  # the watch thread has seen every Job the operator made
        assert {uid for uid in jobs.added if uid in uids} == uids, jobs.added
        duplicates = {uid: n for uid, n in jobs.added.items() if uid in uids and n > 1}
        assert not duplicates, duplicates
        assert all(t["status"]["run"]["jobUid"] for t in trains)
    finally:
        jobs.close()
        # Removed while the operator runs, so its finalizer lets them go (later tests list Trains).
        with control_plane.client() as admin:
            for body in storm_trains(control_plane):
                admin.delete(f"{TRAINS}/{body['metadata']['name']}")
        if operator.alive():
            wait_for(lambda: not storm_trains(control_plane), timeout=60, every=1.0)
        operator.stop()
        api.stop()
        print(f"--- operator log (last run) ---\n{operator.output()[-4000:]}")
