"""UTC time as Kubernetes and the wire contract write it: RFC 3339, second precision, ``Z``."""

from __future__ import annotations

import datetime


def utc_now() -> datetime.datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.datetime.now(datetime.UTC)


def utc_iso(moment: datetime.datetime | None = None) -> str:
    """``moment`` (default: now) as ``2026-01-31T12:00:00Z``."""
    return (moment or utc_now()).astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_in(seconds: float) -> str:
    """The moment ``seconds`` from now, as :func:`utc_iso` writes it."""
    return utc_iso(utc_now() + datetime.timedelta(seconds=seconds))


def parse_utc(value: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime; ``None`` when absent or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


#: Moments and durations a researcher reads, and a train can move, are shown in whole minutes.
#: A run ending at a moment of its choosing then picks one of ``timeout / 60`` values instead of
#: ``timeout`` (a day's run: about 10.5 bits instead of 16.4); the stewards' records (provenance,
#: the result archive) keep the second. See docs/security.md, "The covert-channel budget".
RESEARCHER_TIME_STEP_SECONDS = 60


def researcher_moment(moment: datetime.datetime | None = None) -> datetime.datetime:
    """``moment`` (default: now) rounded down to :data:`RESEARCHER_TIME_STEP_SECONDS`."""
    exact = (moment or utc_now()).astimezone(datetime.UTC)
    whole = int(exact.timestamp())
    return datetime.datetime.fromtimestamp(
        whole - whole % RESEARCHER_TIME_STEP_SECONDS, datetime.UTC
    )


def researcher_iso(moment: datetime.datetime | None = None) -> str:
    """:func:`utc_iso` of :func:`researcher_moment`: how a researcher-visible time is written."""
    return utc_iso(researcher_moment(moment))


def researcher_iso_of(value: str | None) -> str | None:
    """A precise RFC 3339 record as a researcher sees it; ``None`` when absent or malformed."""
    parsed = parse_utc(value)
    return None if parsed is None else researcher_iso(parsed)


def researcher_seconds(seconds: float) -> int:
    """A duration rounded down to whole :data:`RESEARCHER_TIME_STEP_SECONDS` (never negative)."""
    whole = max(0, int(seconds))
    return whole - whole % RESEARCHER_TIME_STEP_SECONDS
