"""Progress is a narrow channel: forward only, rounded to 5 %, one recorded report per 5 s."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from stationkit import bearer, example_query, operator_headers, register, registration

from pht_contract.trains import Progress, ProgressStage
from pht_contract.wire import PROGRESS_PATH, TRAIN_STATE_PATH
from pht_station_api.registry import (
    PROGRESS_INTERVAL_SECONDS,
    TrainRegistry,
    iso,
)
from pht_station_api.state import StationState

KM = example_query("kaplan-meier")
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def at(seconds: float, percent: int, stage: ProgressStage) -> Progress:
    moment = T0 + timedelta(seconds=seconds)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # sub-second, as a clock would have it
    return Progress(percent=percent, stage=stage, updated_at=stamp)


@pytest.fixture
def registry(tmp_path: Path) -> TrainRegistry:
    reg = TrainRegistry(tmp_path / "registrations.json")
    reg.register(registration("token-progress", [KM]))
    return reg


def recorded(registry: TrainRegistry) -> tuple[int, ProgressStage, str | None]:
    (train,) = list(registry)
    assert train.progress is not None
    return train.progress.percent, train.progress.stage, train.progress.updated_at


def test_percent_is_rounded_down_to_a_multiple_of_five(registry: TrainRegistry) -> None:
    (uid,) = [t.uid for t in registry]
    assert registry.set_progress(uid, at(0, 43, ProgressStage.COMPUTING))
    assert recorded(registry) == (40, ProgressStage.COMPUTING, iso(T0))
    assert registry.set_progress(uid, at(10, 99, ProgressStage.COMPUTING))
    assert recorded(registry)[0] == 95  # 100 only when the train says 100


@pytest.mark.parametrize(
    ("percent", "stage"),
    [
        (30, ProgressStage.COMPUTING),  # percent goes back
        (60, ProgressStage.QUERYING),  # stage goes back, percent forward
        (0, ProgressStage.STARTING),  # a retried pod starting over
        (42, ProgressStage.COMPUTING),  # rounds to what is recorded: says nothing new
    ],
)
def test_backwards_or_unchanged_progress_is_not_recorded(
    registry: TrainRegistry, percent: int, stage: ProgressStage
) -> None:
    (uid,) = [t.uid for t in registry]
    assert registry.set_progress(uid, at(0, 40, ProgressStage.COMPUTING))
    assert not registry.set_progress(uid, at(60, percent, stage))
    assert recorded(registry) == (40, ProgressStage.COMPUTING, iso(T0))


def test_one_recorded_report_per_interval_but_done_always(registry: TrainRegistry) -> None:
    (uid,) = [t.uid for t in registry]
    assert registry.set_progress(uid, at(0.5, 0, ProgressStage.STARTING))
    # the first step away from Starting/0 is recorded at once...
    assert registry.set_progress(uid, at(0.9, 10, ProgressStage.QUERYING))
    # ...and then, within the interval: dropped, whatever it says
    assert not registry.set_progress(uid, at(1.0, 15, ProgressStage.QUERYING))
    assert not registry.set_progress(uid, at(4.99, 50, ProgressStage.COMPUTING))
    assert recorded(registry)[:2] == (10, ProgressStage.QUERYING)
    # the interval is measured on the whole-second stamps the requester sees
    assert registry.set_progress(uid, at(PROGRESS_INTERVAL_SECONDS, 50, ProgressStage.COMPUTING))
    assert not registry.set_progress(uid, at(6, 90, ProgressStage.UPLOADING))
    assert not registry.set_progress(uid, at(7, 100, ProgressStage.UPLOADING))
    # the final Done/100 is recorded inside the window, once
    assert registry.set_progress(uid, at(7.5, 100, ProgressStage.DONE))
    assert recorded(registry) == (100, ProgressStage.DONE, iso(T0 + timedelta(seconds=7)))
    assert not registry.set_progress(uid, at(7.6, 100, ProgressStage.DONE))
    assert not registry.set_progress(uid, at(60, 0, ProgressStage.STARTING))


def test_done_below_100_is_throttled_like_any_other(registry: TrainRegistry) -> None:
    (uid,) = [t.uid for t in registry]
    assert registry.set_progress(uid, at(0, 50, ProgressStage.COMPUTING))
    assert not registry.set_progress(uid, at(1, 55, ProgressStage.DONE))
    assert registry.set_progress(uid, at(2, 100, ProgressStage.DONE))


def test_what_is_recorded_survives_a_restart(registry: TrainRegistry, tmp_path: Path) -> None:
    (uid,) = [t.uid for t in registry]
    assert registry.set_progress(uid, at(0, 20, ProgressStage.QUERYING))
    registry.flush()
    again = TrainRegistry(tmp_path / "registrations.json")
    # the throttle and the forward-only rule hold across a restart
    assert not again.set_progress(uid, at(1, 40, ProgressStage.COMPUTING))
    assert not again.set_progress(uid, at(10, 10, ProgressStage.QUERYING))
    assert again.set_progress(uid, at(10, 40, ProgressStage.COMPUTING))


@pytest.mark.asyncio(loop_scope="module")
async def test_every_report_answers_204_and_only_forward_progress_shows(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    """What the SDK's ``run`` sends in a fast run: Starting, a few stages, Done — all 204."""
    token, reg = await register(internal, [KM])
    reports = [(0, "Starting"), (13, "Querying"), (50, "Computing"), (90, "Uploading")]
    reports += [(5, "Starting"), (100, "Done")]
    for percent, stage in reports:
        answer = await internal.post(
            PROGRESS_PATH, json={"percent": percent, "stage": stage}, headers=bearer(token)
        )
        assert answer.status_code == 204, answer.text
    state = await internal.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    progress = state.json()["progress"]
    assert (progress["percent"], progress["stage"]) == (100, "Done")
    # nothing moves after Done
    await internal.post(
        PROGRESS_PATH, json={"percent": 0, "stage": "Starting"}, headers=bearer(token)
    )
    train = station.registry.get(reg.uid)
    assert train is not None and train.progress is not None
    assert (train.progress.percent, train.progress.stage) == (100, ProgressStage.DONE)
