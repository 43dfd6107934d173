"""A running Train's progress is read from the station API on the re-check clock, not on every
pod or Job update that wakes a pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from operator_harness import RUN_NS, STATION_NS, Harness, run_in_thread

from pht_contract.trains import ProgressStage
from pht_operator.clusterview import ClusterView
from pht_sandbox.emulator import TRAINS


def test_progress_is_due_once_per_interval_from_the_run_start() -> None:
    view = ClusterView()
    assert not view.progress_due("u-1", every=0.2)  # the run just started
    time.sleep(0.1)
    assert not view.progress_due("u-2", every=0.2)
    time.sleep(0.15)
    assert view.progress_due("u-1", every=0.2)
    assert not view.progress_due("u-1", every=0.2)
    assert not view.progress_due("u-2", every=0.2)  # per Train: its clock started later
    time.sleep(0.1)
    assert view.progress_due("u-2", every=0.2)
    view.drop_train("u-1")
    assert "u-1" not in view.progress_read


@pytest.fixture
async def slow_recheck(bed: Harness) -> AsyncIterator[Harness]:
    """The operator with a re-check interval far longer than the test."""
    bed.settings = bed.settings.model_copy(update={"poll_interval_seconds": 60.0})
    async with run_in_thread(bed) as running:
        yield running


async def test_passes_woken_while_running_do_not_each_read_progress(
    slow_recheck: Harness,
) -> None:
    harness = slow_recheck
    await harness.apply_policy()
    await harness.create_train("steady")
    await harness.wait_summary("steady", "Queued")
    uid = harness.train("steady")["metadata"]["uid"]
    await harness.jobs.run(RUN_NS, harness.job_name("steady"))
    await harness.wait_summary("steady", "Running")
    version = harness.train("steady")["metadata"]["resourceVersion"]
    for n in range(5):  # each change wakes a pass over the running Train
        await harness.cluster.patch_object(
            TRAINS, STATION_NS, "steady", {"metadata": {"labels": {"touched": str(n)}}}
        )
    await harness.wait_for(
        lambda: harness.train("steady")["metadata"]["labels"].get("touched") == "4"
    )
    await asyncio.sleep(0.5)  # let the woken passes finish
    assert harness.train("steady")["metadata"]["resourceVersion"] != version
    assert harness.station.state_reads[uid] == 0
    assert harness.summary("steady") == "Running"
    harness.station.report_progress(uid, 100, ProgressStage.DONE)
    await harness.jobs.succeed(RUN_NS, harness.job_name("steady"))
    body = await harness.wait_summary("steady", "Succeeded")
    assert body["status"]["progress"]["percent"] == 100  # the run's end brings it
    # ... in the completion call's answer: the state is not read again for the release.
    assert harness.station.state_reads[uid] == 0
    assert uid in harness.station.completions


async def test_without_a_state_in_the_completion_answer_the_release_is_read(
    slow_recheck: Harness,
) -> None:
    harness = slow_recheck
    harness.station.completion_without_state = True
    await harness.apply_policy()
    await harness.create_train("older")
    await harness.wait_summary("older", "Queued")
    uid = harness.train("older")["metadata"]["uid"]
    await harness.jobs.run(RUN_NS, harness.job_name("older"))
    await harness.wait_summary("older", "Running")
    harness.station.report_progress(uid, 100, ProgressStage.DONE)
    await harness.jobs.succeed(RUN_NS, harness.job_name("older"))
    body = await harness.wait_summary("older", "Succeeded")
    assert body["status"]["progress"]["percent"] == 100
    assert body["status"]["result"]["digest"].startswith("sha256:")
    assert harness.station.state_reads[uid] == 1
