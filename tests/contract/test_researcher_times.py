"""Times a researcher reads are whole minutes; the records stewards keep stay precise."""

import datetime

import pytest

from pht_contract.times import (
    RESEARCHER_TIME_STEP_SECONDS,
    parse_utc,
    researcher_iso,
    researcher_iso_of,
    researcher_moment,
    researcher_seconds,
)

UTC = datetime.UTC


def test_a_moment_is_rounded_down_to_the_minute() -> None:
    assert RESEARCHER_TIME_STEP_SECONDS == 60
    moment = datetime.datetime(2026, 1, 31, 12, 34, 59, 999999, tzinfo=UTC)
    assert researcher_moment(moment) == datetime.datetime(2026, 1, 31, 12, 34, tzinfo=UTC)
    assert researcher_iso(moment) == "2026-01-31T12:34:00Z"
    on_the_minute = datetime.datetime(2026, 1, 31, 12, 35, tzinfo=UTC)
    assert researcher_iso(on_the_minute) == "2026-01-31T12:35:00Z"


def test_another_zone_is_the_same_minute() -> None:
    moment = datetime.datetime(
        2026, 1, 31, 14, 34, 17, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert researcher_iso(moment) == "2026-01-31T12:34:00Z"


def test_now_is_coarse_too() -> None:
    stamped = parse_utc(researcher_iso())
    assert stamped is not None
    assert stamped.second == 0 and stamped.microsecond == 0
    assert datetime.datetime.now(UTC) - stamped < datetime.timedelta(seconds=61)


def test_every_second_of_a_minute_reads_the_same() -> None:
    start = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    seen = {researcher_iso(start + datetime.timedelta(seconds=s)) for s in range(60)}
    assert seen == {"2026-03-01T08:00:00Z"}
    assert researcher_iso(start + datetime.timedelta(seconds=60)) == "2026-03-01T08:01:00Z"


def test_a_precise_record_is_shown_coarse_and_bad_input_is_none() -> None:
    assert researcher_iso_of("2026-01-31T12:00:59Z") == "2026-01-31T12:00:00Z"
    assert researcher_iso_of(None) is None
    assert researcher_iso_of("not a time") is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, 0), (59.9, 0), (60, 60), (61, 60), (3599, 3540), (86400, 86400), (-5, 0)],
)
def test_durations_are_whole_minutes(seconds: float, shown: int) -> None:
    assert researcher_seconds(seconds) == shown
