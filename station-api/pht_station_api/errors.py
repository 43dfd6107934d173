"""Every refusal the station API gives, mapped to an HTTP status and a CamelCase reason.

Routers raise these; :func:`install_error_handlers` turns them into ``{"reason", "message"}``
JSON bodies in one place, so a client (the train SDK, the operator, ``pht``) can branch on
``reason`` and a human can read ``message``. Messages never carry patient data or result rows.
"""

from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class StationApiError(Exception):
    status: ClassVar[int] = 400
    reason: ClassVar[str] = "BadRequest"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message, **self.extra}

    def headers(self) -> dict[str, str] | None:
        return None


# --- authentication and authorisation -------------------------------------------------
class Unauthenticated(StationApiError):
    status = 401
    reason = "Unauthenticated"

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(StationApiError):
    status = 403
    reason = "Forbidden"


class NotFound(StationApiError):
    status = 404
    reason = "NotFound"


class Conflict(StationApiError):
    status = 409
    reason = "Conflict"


class InvalidRegistration(StationApiError):
    status = 422
    reason = "InvalidRegistration"


class IdentityUnavailable(StationApiError):
    """TokenReview/SubjectAccessReview could not be asked: refuse rather than guess."""

    status = 503
    reason = "IdentityUnavailable"


# --- the SPARQL gateway -------------------------------------------------------------------
class MalformedQuery(StationApiError):
    status = 400
    reason = "MalformedQuery"


class QueryNotAllowed(StationApiError):
    status = 403
    reason = "QueryNotAllowed"


class UpdateRefused(QueryNotAllowed):
    reason = "UpdateRefused"


class ServiceRefused(QueryNotAllowed):
    reason = "ServiceRefused"


class GraphNotAllowed(QueryNotAllowed):
    reason = "GraphNotAllowed"


class QueryNotApproved(QueryNotAllowed):
    reason = "QueryNotApproved"


class RowCapExceeded(StationApiError):
    status = 422
    reason = "RowCapExceeded"


class TooFewPatients(StationApiError):
    status = 422
    reason = "TooFewPatients"


class RequestTooLarge(StationApiError):
    status = 413
    reason = "RequestTooLarge"


class RateLimited(StationApiError):
    status = 429
    reason = "RateLimited"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class QueryTooComplex(StationApiError):
    """Checking the query took longer than the gateway allows; it never reached the store."""

    status = 422
    reason = "QueryTooComplex"


class QueryCheckBusy(RateLimited):
    """The train already has a query being checked, or every checker is busy: retry shortly."""

    reason = "QueryCheckBusy"


class NotAcceptable(StationApiError):
    status = 406
    reason = "NotAcceptable"


class UnsupportedMediaType(StationApiError):
    status = 415
    reason = "UnsupportedMediaType"


class QueryTimeout(StationApiError):
    status = 504
    reason = "QueryTimeout"


class StoreUnavailable(StationApiError):
    status = 503
    reason = "StoreUnavailable"


class LoadFailed(StationApiError):
    status = 400
    reason = "LoadFailed"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _station_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StationApiError)
    return _json(exc.status, exc.body(), exc.headers())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Field locations and messages only: the offending input is not echoed back.
    problems = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ][:20]
    return _json(
        422, {"reason": "InvalidRequest", "message": "the request is invalid", "errors": problems}
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reasons = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthenticated"}
    return _json(
        exc.status_code,
        {"reason": reasons.get(exc.status_code, "HttpError"), "message": str(exc.detail)},
        dict(exc.headers) if exc.headers else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StationApiError, _station_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
