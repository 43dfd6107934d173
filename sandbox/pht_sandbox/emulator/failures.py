"""API errors as the server reports them: a ``Status`` object with an HTTP code and a reason."""

from __future__ import annotations

from typing import Final

from pht_contract.objects import Obj


class ApiFailure(Exception):
    """An API error as the server reports it: a ``Status`` object with an HTTP code."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message

    def status(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
        }


REASONS: Final = {
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
    410: "Gone",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def gone(since: int) -> Obj:
    return {
        "type": "ERROR",
        "object": ApiFailure(410, "Expired", f"too old resource version: {since}").status(),
    }
