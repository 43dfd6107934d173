"""HTTP calls to the station API's internal listener, with bounded retries.

Standard library only (``urllib``): the SDK goes into every algorithm image and must not drag
dependencies in. Retries cover what a restart or a busy station looks like from a pod —
connection errors, 5xx and 429 — a fixed number of times with exponential backoff, honouring
``Retry-After`` up to a cap. Anything else (401, 403, a refused query, an invalid manifest) is
the station's answer and is raised at once as :class:`StationError` with its reason.
"""

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pht_train.constants import CAMEL_REASON, MAX_REASON_CHARS
from pht_train.errors import StationError

_REASON = re.compile(CAMEL_REASON)

#: What a status means when the station's body does not say (a proxy's page, a bare 502).
_STATUS_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` in all, waiting ``backoff * 2**k`` (capped) in between."""

    attempts: int = 4
    backoff_seconds: float = 0.5
    max_wait_seconds: float = 10.0
    timeout_seconds: float = 120.0

    def wait(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait_seconds)
        return float(min(self.backoff_seconds * 2**retry, self.max_wait_seconds))


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StationError(
                "InvalidResponse", "the station's answer is not JSON", self.status
            ) from None


class StationClient:
    """Authenticated requests to one station API base URL."""

    def __init__(
        self,
        base_url: str,
        token: str,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        # Directly to the station's address: a pod has no proxy, and a developer's
        # http_proxy must not carry a token or patient data anywhere else.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"StationClient({self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> Response:
        """Send one request, retrying what is worth retrying; raise :class:`StationError`."""
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        last: StationError | None = None
        for retry in range(self.retry.attempts):
            if last is not None:
                self._sleep(self.retry.wait(retry - 1, last.retry_after))
            try:
                return self._send(method, self.base_url + path, body, headers)
            except StationError as error:
                if not error.retryable:
                    raise
                last = error
        assert last is not None
        raise last

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.retry.timeout_seconds) as answer:
                return Response(
                    answer.status, answer.read(), answer.headers.get("Content-Type", "")
                )
        except urllib.error.HTTPError as error:
            with error:
                failure = _station_error(error.code, error.read(), error.headers.get("Retry-After"))
            raise failure from None
        except (urllib.error.URLError, OSError) as error:
            raise StationError(
                "StationUnreachable", f"cannot reach the station API ({type(error).__name__})", None
            ) from None


def _station_error(status: int, body: bytes, retry_after: str | None) -> StationError:
    """The station's ``{"reason", "message"}`` body as an exception (or a status-based one)."""
    reason, message = _reason_from_body(body)
    if reason is None:
        reason = _STATUS_REASONS.get(status, "StationUnavailable" if status >= 500 else "HttpError")
    return StationError(reason, message or f"HTTP {status}", status, _seconds(retry_after))


def _reason_from_body(body: bytes) -> tuple[str | None, str]:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, ""
    # FastAPI wraps errors raised as HTTPException(detail={...}) one level down.
    if isinstance(document, dict) and isinstance(document.get("detail"), dict):
        document = document["detail"]
    if not isinstance(document, dict):
        return None, ""
    reason = document.get("reason")
    message = document.get("message", document.get("detail", ""))
    message = message if isinstance(message, str) else ""
    if isinstance(reason, str) and len(reason) <= MAX_REASON_CHARS and _REASON.match(reason):
        return reason, message
    return None, message


def _seconds(retry_after: str | None) -> float | None:
    """``Retry-After`` in seconds; the HTTP-date form is rare here and treated as absent."""
    try:
        return float(retry_after) if retry_after is not None else None
    except ValueError:
        return None
