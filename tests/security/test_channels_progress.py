"""A train signals through the timing and values of its progress reports.

The attack: a run encodes one bit per interval in *when* it reports (early or late in the
interval) and more bits in the percentage; the requester reads ``status.progress`` of the Train
(the operator mirrors what the station API shows). What now holds: reports become visible only
at fixed ticks of the wall clock, stamped with the tick, as a stage and a percentage in steps of
25; two runs that differ only in when (inside a tick) or in fine percentages look identical.
"""

from datetime import UTC, datetime

from security_channels_kit import registration

from pht_contract.trains import ProgressStage
from pht_station_api.registry import TrainRegistry

TICK = 30
T0 = 1_795_000_200.0  # a tick boundary
SECRET_A = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1]
SECRET_B = [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0]
STAGES = list(ProgressStage)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def observe_run(secret: list[int], percent_of: list[int]) -> list[tuple[int, str, str] | None]:
    """Run the covert sender against a registry; return what a poller sees every second."""
    clock = Clock()
    reg = TrainRegistry(None, TICK, clock)
    train, _ = reg.register(registration("covert-progress-" + "".join(map(str, secret)), []))
    seen: list[tuple[int, str, str] | None] = []
    for tick, bit in enumerate(secret):
        # one report per tick, early for a 0 and late for a 1; the stage creeps forward
        stage = STAGES[min(1 + tick // 2, len(STAGES) - 2)]
        clock.now = T0 + tick * TICK + (0.2 if bit == 0 else TICK - 0.2)
        reg.offer_progress(train.uid, percent_of[tick], stage)
        for second in range(TICK):
            clock.now = T0 + (tick + 1) * TICK + second
            shown = train.progress
            seen.append(
                None
                if shown is None
                else (shown.percent, shown.stage.value, shown.updated_at or "")
            )
    return seen


def test_report_timing_within_a_tick_is_invisible() -> None:
    percents = [8 * (i + 1) for i in range(len(SECRET_A))]
    assert observe_run(SECRET_A, percents) == observe_run(SECRET_B, percents)


def test_fine_percentages_do_not_show() -> None:
    """Bits hidden in the low digits of the percentage are rounded away."""
    low = [25 * (i // 3) + 1 for i in range(12)]
    high = [25 * (i // 3) + 1 + 11 * (i % 3) for i in range(12)]  # bits in the low digits
    views = observe_run(SECRET_A, low)
    assert views == observe_run(SECRET_A, high)
    assert {view[0] for view in views if view is not None} <= {0, 25, 50, 75, 100}


def test_visible_stamps_are_ticks_never_report_moments() -> None:
    for view in observe_run(SECRET_A, [50] * 12):
        if view is not None:
            moment = datetime.fromisoformat(view[2].replace("Z", "+00:00")).astimezone(UTC)
            assert moment.timestamp() % TICK == 0
