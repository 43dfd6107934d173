"""Exception types the SDK raises, each carrying a CamelCase reason.

A train that lets one of these escape :func:`pht_train.run` ends with that reason (see
:mod:`pht_train.failures`), so every failure has a short machine-readable name and no data.
"""


class TrainError(Exception):
    """Base of every SDK error; ``reason`` is the CamelCase word a failed run reports."""

    reason: str = "TrainError"


class ConfigurationError(TrainError):
    """The run's environment is missing or malformed (not started by a station?)."""

    reason = "InvalidEnvironment"


class ParameterError(TrainError):
    """A parameter the algorithm needs is missing or has the wrong type."""

    reason = "InvalidParameters"


class QueryNotFound(TrainError):
    """The algorithm asked for a named query the Train spec does not declare."""

    reason = "QueryNotDeclared"


class ResultFormatError(TrainError):
    """The gateway's answer is not a SPARQL JSON result the SDK can read."""

    reason = "InvalidQueryResult"


class ManifestError(TrainError, ValueError):
    """The result manifest would be refused by the station; fixed before anything is sent."""

    reason = "InvalidManifest"


class StationError(TrainError):
    """The station API answered with an error; ``reason`` is its CamelCase reason.

    The station's error bodies are ``{"reason": ..., "message": ...}``. ``status`` is the HTTP
    status, or ``None`` when the station could not be reached at all.
    """

    def __init__(
        self, reason: str, message: str, status: int | None, retry_after: float | None = None
    ) -> None:
        where = f" (HTTP {status})" if status else ""
        super().__init__(f"{reason}{where}: {message}")
        self.reason = reason
        self.message = message
        self.status = status
        #: Seconds the station asked us to wait (``Retry-After``), if it said.
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Worth another try: the station was unreachable, overloaded or failed itself.

        Not a 504: at a station that is a query that ran out of its time limit, and it would
        only run out again.
        """
        if self.status is None or self.status == 429:
            return True
        return self.status >= 500 and self.status != 504
