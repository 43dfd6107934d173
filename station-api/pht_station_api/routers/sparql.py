"""SPARQL 1.1 Protocol endpoint for running trains (internal listener).

GET with ``query``; POST form-encoded with ``query``; POST ``application/sparql-query`` with the
query as body. ``update`` (form) and ``application/sparql-update`` are refused as updates.
Dataset parameters (``default-graph-uri``, ``named-graph-uri``) are honoured only within the
train's allowed graphs. Instead of ``query``, a train names one of its approved queries with
``query-name`` (or ``query-hash``), and the station runs the text stored at registration.

The rate limit is checked first; every request past it is audited, whatever its outcome.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pht_contract.wire import SPARQL_PATH
from pht_station_api.deps import RunDep, StateDep
from pht_station_api.errors import (
    MalformedQuery,
    StationApiError,
    UnsupportedMediaType,
    UpdateRefused,
)
from pht_station_api.gateway.executions import QueryRequest, record_refusal, run_query
from pht_station_api.registry import RegisteredTrain
from pht_station_api.responses import refusal

router = APIRouter(tags=["sparql"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer in the negotiated format",
        "content": {
            "application/sparql-results+json": {},
            "application/sparql-results+xml": {},
            "text/csv": {},
            "text/tab-separated-values": {},
            "text/turtle": {},
        },
    },
    400: refusal("MalformedQuery (with line and column)"),
    401: refusal("Unauthenticated"),
    403: refusal("UpdateRefused, ServiceRefused, GraphNotAllowed, QueryNotApproved"),
    406: refusal("NotAcceptable"),
    413: refusal("RequestTooLarge"),
    415: refusal("UnsupportedMediaType"),
    422: refusal("RowCapExceeded, TooFewPatients"),
    429: refusal("RateLimited"),
    504: refusal("QueryTimeout"),
}


def _one(values: list[str], name: str) -> str:
    if len(values) != 1:
        raise MalformedQuery(f"exactly one {name!r} parameter is required")
    return values[0]


def _at_most_one(values: list[str] | None, name: str) -> str | None:
    if not values:
        return None
    return _one(values, name)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedQuery("the query is not UTF-8") from None


def _query_request(
    request: Request, text: str | None, params: dict[str, list[str]]
) -> QueryRequest:
    name = _at_most_one(params.get("query-name"), "query-name")
    digest = _at_most_one(params.get("query-hash"), "query-hash")
    if text is None and name is None and digest is None:
        raise MalformedQuery("send 'query', or name an approved query with 'query-name'")
    if text is not None and (name is not None or digest is not None):
        raise MalformedQuery("send either 'query' or 'query-name'/'query-hash', not both")
    return QueryRequest(
        text=text,
        accept=request.headers.get("accept"),
        default_graph_uris=params.get("default-graph-uri", []),
        named_graph_uris=params.get("named-graph-uri", []),
        name=name,
        digest=digest,
    )


async def _answer(
    state: StateDep,
    train: RegisteredTrain,
    read: Callable[[], Awaitable[QueryRequest]],
) -> Response:
    """Rate limit, then read the request and run it; every refusal past the limit is audited."""
    started = time.perf_counter()
    state.rate_limits.check(train.uid, train.registration.policy.data_access.queries_per_minute)
    try:
        query = await read()
    except StationApiError as refusal:
        await record_refusal(state, train, refusal, started)
        raise
    answer = await run_query(state, train, query, started)
    return Response(content=answer.body, media_type=answer.media_type)


@router.get(SPARQL_PATH, responses=_RESPONSES, response_class=Response)
async def sparql_get(
    request: Request,
    state: StateDep,
    train: RunDep,
    # Optional here so a missing query is the protocol's 400 MalformedQuery, not a 422.
    query: Annotated[str | None, Query(max_length=1_048_576)] = None,
    default_graph_uri: Annotated[list[str] | None, Query(alias="default-graph-uri")] = None,
    named_graph_uri: Annotated[list[str] | None, Query(alias="named-graph-uri")] = None,
    query_name: Annotated[str | None, Query(alias="query-name", max_length=63)] = None,
    query_hash: Annotated[str | None, Query(alias="query-hash", max_length=64)] = None,
) -> Response:
    """Run a read-only SPARQL query given in the URL."""

    async def read() -> QueryRequest:
        params = parse_qs(request.url.query, keep_blank_values=True)
        text = _at_most_one(params.get("query"), "query")
        return _query_request(request, text, params)

    return await _answer(state, train, read)


@router.post(
    SPARQL_PATH,
    responses=_RESPONSES,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/sparql-query": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "query-name": {"type": "string"},
                            "query-hash": {"type": "string"},
                            "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                            "named-graph-uri": {"type": "array", "items": {"type": "string"}},
                        },
                    }
                },
            },
        }
    },
)
async def sparql_post(request: Request, state: StateDep, train: RunDep) -> Response:
    """Run a read-only SPARQL query sent as a form or as ``application/sparql-query``."""

    async def read() -> QueryRequest:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        url_params = parse_qs(request.url.query, keep_blank_values=True)
        if content_type == "application/sparql-update":
            raise UpdateRefused("SPARQL updates are refused: the data store is read-only")
        if content_type == "application/sparql-query":
            return _query_request(request, _decode(body), url_params)
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(_decode(body), keep_blank_values=True)
            if "update" in form:
                raise UpdateRefused("SPARQL updates are refused: the data store is read-only")
            params = {**url_params, **{k: v for k, v in form.items() if k != "query"}}
            text = _at_most_one(form.get("query"), "query")
            return _query_request(request, text, params)
        raise UnsupportedMediaType(
            "send application/sparql-query or application/x-www-form-urlencoded"
        )

    return await _answer(state, train, read)
