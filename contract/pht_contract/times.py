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
