"""The one place where request bodies are measured: everything past the limit is a 413.

:class:`RequestSizeLimit` wraps each listener. Every request starts with the station's limit
(``MAX_REQUEST_BYTES``). A route that accepts more, or less, says so with :func:`allow_body`
before it reads its body: the operator's data load (``MAX_LOAD_BYTES``) and a train's result
upload (its policy's ``maxResultBytes``). A declared ``Content-Length`` over the limit is refused
before a byte is read, and the bytes actually received are counted, so neither a lying
``Content-Length`` nor a chunked body without one gets past the limit. The refusal is a
``413`` with a reason (``RequestTooLarge``, or the route's own), whatever the route would have
answered: nothing from an oversized request is stored.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pht_station_api.errors import RequestTooLarge, StationApiError

SCOPE_KEY: Final = "pht.body_budget"

Refusal = Callable[[int], StationApiError]


def request_too_large(limit: int) -> StationApiError:
    return RequestTooLarge(f"the request body exceeds {limit} bytes")


@dataclass
class BodyBudget:
    """How many bytes this request's body may have, and what it gets when it has more."""

    max_bytes: int
    refusal: Refusal = request_too_large
    received: int = 0
    started: bool = False
    refused: StationApiError | None = field(default=None)

    def _refuse(self) -> StationApiError:
        self.refused = self.refusal(self.max_bytes)
        return self.refused

    def check_declared(self, declared: str | None) -> None:
        """Before the first byte: a declared length over the limit is refused at once."""
        self.started = True
        length = (declared or "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            raise self._refuse()

    def count(self, size: int) -> None:
        self.received += size
        if self.received > self.max_bytes:
            raise self._refuse()


def allow_body(request: Request, max_bytes: int, refusal: Refusal = request_too_large) -> None:
    """Give this request's body its own limit; call it before the body is read."""
    budget = request.scope.get(SCOPE_KEY)
    if not isinstance(budget, BodyBudget):
        raise RuntimeError("the request size limit is not installed on this listener")
    if budget.started:
        raise RuntimeError("the body limit must be set before the body is read")
    budget.max_bytes = max_bytes
    budget.refusal = refusal


class RequestSizeLimit:
    """ASGI middleware: measures every request body against the request's :class:`BodyBudget`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = BodyBudget(self.max_bytes)
        scope[SCOPE_KEY] = budget
        declared = _header(scope, b"content-length")
        response_started = False

        async def measured_receive() -> Message:
            if budget.refused is not None:
                raise budget.refused
            if not budget.started:
                budget.check_declared(declared)
            message = await receive()
            if message["type"] == "http.request":
                budget.count(len(message.get("body", b"")))
            return message

        async def refusing_send(message: Message) -> None:
            nonlocal response_started
            if budget.refused is None:
                response_started = True
                await send(message)
            elif message["type"] == "http.response.start" and not response_started:
                # Whatever the route made of the refusal, the caller gets the 413.
                response_started = True
                await _refusal_response(budget.refused)(scope, receive, send)

        try:
            await self.app(scope, measured_receive, refusing_send)
        except StationApiError:
            if budget.refused is None or response_started:
                raise
            await _refusal_response(budget.refused)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _refusal_response(refusal: StationApiError) -> JSONResponse:
    return JSONResponse(
        status_code=refusal.status,
        content=refusal.body(),
        headers={**(refusal.headers() or {}), "Connection": "close"},
    )
