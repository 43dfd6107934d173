"""Refusals of the result archive, as station API errors (one handler maps them to HTTP).

Messages name the train, the attempt or the limit, never anything from the result itself.
"""

from pht_station_api.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RequestTooLarge,
    StationApiError,
)


class InvalidResult(StationApiError):
    """The upload is not a valid result manifest (unknown fields, free strings, bad rows)."""

    status = 422
    reason = "InvalidResult"


class ResultTooLarge(RequestTooLarge):
    reason = "ResultTooLarge"


class ResultClosed(Conflict):
    """The run's completion was reported: later uploads would bypass the gate's decision."""

    reason = "ResultClosed"


class TooManyUploads(Conflict):
    """A train may upload a bounded number of times: a run must not fill the station's disk or
    its provenance chain. Only the latest attempt counts, so a train keeps its best for last."""

    reason = "TooManyUploads"


class NotHeld(Conflict):
    """Only a held result can be released or blocked by a steward."""

    reason = "NotHeld"


class OwnResult(Forbidden):
    """A steward does not release the result of a Train they requested: as with approvals,
    the person who asked is not the person who lets it out. Blocking one's own is allowed."""

    reason = "OwnResultRelease"


class OwnResultView(Forbidden):
    """A steward does not see the content of a Train they requested before another steward
    releases it: seeing a held result is receiving it."""

    reason = "OwnResultView"


class NotReleased(NotFound):
    """Requesters see nothing about a result before its release (not even that it exists)."""

    reason = "NotReleased"


class UnknownResult(NotFound):
    reason = "UnknownResult"
