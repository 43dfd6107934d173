"""Progress is a narrow channel: forward only, quantised, visible only at fixed clock ticks."""

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from stationkit import bearer, example_query, operator_headers, register, registration

from pht_contract.times import utc_iso
from pht_contract.trains import ProgressStage
from pht_contract.wire import PROGRESS_PATH, TRAIN_STATE_PATH
from pht_station_api.registry import TrainRegistry
from pht_station_api.state import StationState

KM = example_query("kaplan-meier")
TICK = 30
#: A tick boundary of the wall clock (a multiple of TICK seconds since the epoch).
T0 = 1_795_000_200.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + seconds


def stamp(seconds: int) -> str:
    return utc_iso(datetime.fromtimestamp(T0 + seconds, UTC))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> TrainRegistry:
    reg = TrainRegistry(tmp_path / "registrations.json", TICK, clock)
    reg.register(registration("token-progress", [KM]))
    return reg


def uid_of(registry: TrainRegistry) -> str:
    (train,) = list(registry)
    return train.uid


def visible(registry: TrainRegistry) -> tuple[int, ProgressStage, str | None] | None:
    (train,) = list(registry)
    progress = train.progress
    if progress is None:
        return None
    return progress.percent, progress.stage, progress.updated_at


def test_a_report_shows_only_at_the_next_tick_stamped_with_the_tick(
    registry: TrainRegistry, clock: Clock
) -> None:
    uid = uid_of(registry)
    clock.at(3.25)
    assert registry.offer_progress(uid, 43, ProgressStage.COMPUTING)
    assert visible(registry) is None
    clock.at(TICK - 0.001)
    assert visible(registry) is None
    clock.at(TICK)
    assert visible(registry) == (25, ProgressStage.COMPUTING, stamp(TICK))


def test_when_inside_a_tick_a_run_reports_is_not_observable(tmp_path: Path) -> None:
    """Two runs reporting the same stages at different moments of each tick look the same."""
    seen = []
    for offsets in ((0.1, 0.2, 0.3), (29.9, 15.0, 0.0)):
        clock = Clock()
        reg = TrainRegistry(tmp_path / f"{offsets[0]}.json", TICK, clock)
        reg.register(registration(f"token-{offsets[0]}", [KM]))
        uid = uid_of(reg)
        views = []
        stages = (ProgressStage.QUERYING, ProgressStage.COMPUTING, ProgressStage.UPLOADING)
        for tick, (offset, stage) in enumerate(zip(offsets, stages, strict=True)):
            clock.at(tick * TICK + offset)
            reg.offer_progress(uid, 10 * (tick + 1), stage)
            for probe in range(0, TICK, 5):
                clock.at((tick + 1) * TICK + probe)
                views.append(visible(reg))
        seen.append(views)
    assert seen[0] == seen[1]


def test_only_the_last_offer_of_a_tick_is_shown(registry: TrainRegistry, clock: Clock) -> None:
    uid = uid_of(registry)
    clock.at(1)
    assert registry.offer_progress(uid, 10, ProgressStage.QUERYING)
    clock.at(2)
    assert registry.offer_progress(uid, 50, ProgressStage.COMPUTING)
    clock.at(TICK + 1)
    assert visible(registry) == (50, ProgressStage.COMPUTING, stamp(TICK))


@pytest.mark.parametrize(
    ("percent", "stage"),
    [
        (25, ProgressStage.COMPUTING),  # percent goes back
        (75, ProgressStage.QUERYING),  # stage goes back, percent forward
        (0, ProgressStage.STARTING),  # a retried pod starting over
        (74, ProgressStage.COMPUTING),  # rounds to what is shown: says nothing new
    ],
)
def test_backwards_or_unchanged_progress_is_dropped(
    registry: TrainRegistry, clock: Clock, percent: int, stage: ProgressStage
) -> None:
    uid = uid_of(registry)
    assert registry.offer_progress(uid, 50, ProgressStage.COMPUTING)
    clock.at(2 * TICK)
    assert not registry.offer_progress(uid, percent, stage)
    clock.at(10 * TICK)
    assert visible(registry) == (50, ProgressStage.COMPUTING, stamp(TICK))


def test_what_is_shown_and_offered_survives_a_restart(
    registry: TrainRegistry, clock: Clock, tmp_path: Path
) -> None:
    uid = uid_of(registry)
    assert registry.offer_progress(uid, 25, ProgressStage.QUERYING)
    clock.at(TICK + 1)
    assert registry.offer_progress(uid, 50, ProgressStage.COMPUTING)
    registry.flush()
    again = TrainRegistry(tmp_path / "registrations.json", TICK, clock)
    assert visible(again) == (25, ProgressStage.QUERYING, stamp(TICK))
    assert not again.offer_progress(uid, 25, ProgressStage.QUERYING)
    clock.at(2 * TICK)
    assert visible(again) == (50, ProgressStage.COMPUTING, stamp(2 * TICK))


@pytest.mark.asyncio(loop_scope="module")
async def test_every_report_answers_204_and_none_shows_before_the_tick(
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
    train = station.registry.get(reg.uid)
    assert train is not None and train.progress_offer is not None
    assert (train.progress_offer.percent, train.progress_offer.stage) == (100, ProgressStage.DONE)
    state = await internal.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    shown = state.json().get("progress")
    # the default tick is 30 s: unless this test straddled a tick, nothing shows yet, and
    # whatever shows is a whole tick of the wall clock, never the moment of a report
    if shown is not None:
        moment = datetime.fromisoformat(shown["updatedAt"].replace("Z", "+00:00"))
        assert moment.timestamp() % station.settings.progress_tick_seconds == 0
        assert shown["percent"] % 25 == 0
