"""What a researcher reads of a run's timing is whole minutes; the Job keeps its seconds.

The clock of the station's time helpers is moved so that every moment of the test falls at
second 17 or later of a minute, and the run lasts 75 seconds of that clock: a precise time
would show a non-zero second, a precise duration would not be a multiple of 60.
"""

from __future__ import annotations

import datetime

import pytest
from operator_harness import RUN_NS, Harness

from pht_contract import times
from pht_contract.times import parse_utc
from pht_sandbox.emulator import JOBS


class MovableClock:
    """Real time, shifted so that it reads second 17 of a minute now, plus a manual offset."""

    def __init__(self) -> None:
        real = datetime.datetime.now(datetime.UTC)
        self._shift = datetime.timedelta(seconds=(17 - real.second) % 60)
        self.ahead = datetime.timedelta(0)

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self._shift + self.ahead


def _whole_minute(value: str | None) -> bool:
    parsed = parse_utc(value)
    assert parsed is not None, value
    return parsed.second == 0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    moved = MovableClock()
    monkeypatch.setattr(times, "utc_now", moved)
    return moved


async def test_run_times_and_duration_are_coarse(clock: MovableClock, harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("km")
    body = await harness.wait_summary("km", "Queued")
    job_name = body["status"]["run"]["jobName"]
    await harness.jobs.schedule(RUN_NS, job_name)
    await harness.jobs.run(RUN_NS, job_name)
    await harness.wait_summary("km", "Running")
    clock.ahead = datetime.timedelta(seconds=75)
    await harness.jobs.succeed(RUN_NS, job_name)
    body = await harness.wait_summary("km", "Succeeded")

    job = harness.cluster.get_object(JOBS, RUN_NS, job_name)
    assert job is not None
    # The Job (the run namespace, not readable by researchers) keeps its seconds.
    assert not _whole_minute(job["status"]["startTime"])
    assert not _whole_minute(job["status"]["completionTime"])

    status = body["status"]
    assert _whole_minute(status["startTime"])
    assert _whole_minute(status["completionTime"])
    moved_by_the_run = {"Running", "Succeeded", "ResultReleased"}
    for entry in status["conditions"]:
        coarse = _whole_minute(entry["lastTransitionTime"])
        assert coarse == (entry["type"] in moved_by_the_run), entry
    assert status["durationSeconds"] % 60 == 0
    assert status["durationSeconds"] >= 60  # 75 s of the moved clock, shown as one minute
