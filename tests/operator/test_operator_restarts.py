"""Restart safety: SIGKILL the real operator process at random moments with many Trains in
flight; after restarts every Train reaches its terminal condition, none is lost and no Train
ever gets a second Job."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from operator_harness import RUN_NS, STATION_NS, Harness

from pht_contract import constants
from pht_sandbox.emulator import JOBS, TRAINS

TRAINS_IN_FLIGHT = 32
KILLS = 4


def operator_env(harness: Harness) -> dict[str, str]:
    settings = harness.settings
    env = dict(os.environ)
    env.update(
        {
            "PHT_OPERATOR_STATION_NAMESPACES": STATION_NS,
            "PHT_OPERATOR_RUN_NAMESPACE": RUN_NS,
            "PHT_OPERATOR_STATION_API_URL": settings.station_api_url,
            "PHT_OPERATOR_RUN_API_URL": settings.run_api_url,
            "PHT_OPERATOR_STATION_API_NAMESPACE": settings.station_api_namespace or "",
            "PHT_OPERATOR_API_TOKEN": settings.api_token or "",
            "PHT_OPERATOR_HEALTH_PORT": "0",
            "PHT_OPERATOR_METRICS_PORT": "0",
            "PHT_OPERATOR_WATCH_TIMEOUT_SECONDS": "2",
            "PHT_OPERATOR_POLL_INTERVAL_SECONDS": "0.5",
            "PHT_OPERATOR_JOB_TTL_SECONDS": "3600",
        }
    )
    return env


async def start_operator(harness: Harness, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pht_cli.main",
        "operator",
        "--kubeconfig",
        str(harness.kubeconfig),
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
        env=operator_env(harness),
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_sigkill_at_random_points_converges_without_duplicate_runs(
    bed: Harness, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    jobs_created: collections.Counter[str] = collections.Counter()

    def count_jobs(event_type: str, spec: Any, obj: dict[str, Any]) -> None:
        if spec.key == JOBS.key and event_type == "ADDED":
            jobs_created[obj["metadata"]["labels"][constants.LABEL_TRAIN_UID]] += 1

    bed.cluster.add_listener(count_jobs)
    bed.jobs.autopilot(lambda job: "succeed", step_seconds=0.4)
    await bed.apply_policy(limits={"maxConcurrentTrains": 8})
    log = tmp_path / "operator.log"
    process = await start_operator(bed, log)
    try:
        for index in range(TRAINS_IN_FLIGHT):
            await bed.create_train(f"t{index:02d}")
        in_flight_at_kill = []
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            in_flight_at_kill.append(
                sum(
                    (b.get("status") or {}).get("summary") != "Succeeded"
                    for b in bed.cluster.list_objects(TRAINS, STATION_NS)
                )
            )
            process.send_signal(signal.SIGKILL)
            await process.wait()
            process = await start_operator(bed, log)

        def all_terminal() -> bool:
            return all(
                (b.get("status") or {}).get("summary") == "Succeeded"
                for b in bed.cluster.list_objects(TRAINS, STATION_NS)
            )

        await bed.wait_for(all_terminal, timeout=90, what="every Train to succeed")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
    assert all(count > 0 for count in in_flight_at_kill), in_flight_at_kill  # killed mid-work
    trains = bed.cluster.list_objects(TRAINS, STATION_NS)
    assert len(trains) == TRAINS_IN_FLIGHT  # none lost
    uids = {t["metadata"]["uid"] for t in trains}
    assert set(jobs_created) == uids
    assert max(jobs_created.values()) == 1, jobs_created  # never a second run
    assert all(t["status"]["run"]["jobUid"] for t in trains)
    assert set(bed.station.deregistered) == uids
    status_writes = bed.cluster.writes[("PATCH", "trains", "status")]
    print(f"status writes per Train over the whole lifecycle: {status_writes / len(uids):.1f}")
