"""UTC timestamps as Kubernetes writes them, and their parsing."""

import datetime

from pht_contract.times import parse_utc, utc_in, utc_iso


def test_utc_iso_is_rfc3339_with_z_and_seconds() -> None:
    moment = datetime.datetime(2026, 1, 31, 12, 0, 5, 123456, tzinfo=datetime.UTC)
    assert utc_iso(moment) == "2026-01-31T12:00:05Z"
    other_zone = moment.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert utc_iso(other_zone) == "2026-01-31T12:00:05Z"


def test_parse_utc_round_trips_and_tolerates_bad_input() -> None:
    assert parse_utc("2026-01-31T12:00:05Z") == datetime.datetime(
        2026, 1, 31, 12, 0, 5, tzinfo=datetime.UTC
    )
    assert parse_utc("2026-01-31T12:00:05") == datetime.datetime(
        2026, 1, 31, 12, 0, 5, tzinfo=datetime.UTC
    )
    assert parse_utc(None) is None
    assert parse_utc("") is None
    assert parse_utc("yesterday") is None


def test_utc_in_lies_ahead() -> None:
    ahead = parse_utc(utc_in(3600))
    assert ahead is not None
    delta = ahead - datetime.datetime.now(datetime.UTC)
    assert 3590 < delta.total_seconds() <= 3600
