"""SPARQL 1.1 Protocol endpoint for running trains (internal listener).

GET with ``query``; POST form-encoded with ``query``; POST ``application/sparql-query`` with the
query as body. ``update`` (form) and ``application/sparql-update`` are refused as updates.
Dataset parameters (``default-graph-uri``, ``named-graph-uri``) are honoured only within the
train's allowed graphs.
"""

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pht_contract.wire import SPARQL_PATH
from pht_station_api.deps import RunDep, StateDep
from pht_station_api.errors import (
    MalformedQuery,
    RequestTooLarge,
    UnsupportedMediaType,
    UpdateRefused,
)
from pht_station_api.gateway.executions import QueryRequest, run_query

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
    400: {"description": "MalformedQuery (with line and column)"},
    401: {"description": "Unauthenticated"},
    403: {"description": "UpdateRefused, ServiceRefused, GraphNotAllowed, QueryNotApproved"},
    406: {"description": "NotAcceptable"},
    413: {"description": "RequestTooLarge"},
    415: {"description": "UnsupportedMediaType"},
    422: {"description": "RowCapExceeded, TooFewPatients"},
    429: {"description": "RateLimited"},
    504: {"description": "QueryTimeout"},
}


def _one(values: list[str], name: str) -> str:
    if len(values) != 1:
        raise MalformedQuery(f"exactly one {name!r} parameter is required")
    return values[0]


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"the request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedQuery("the query is not UTF-8") from None


async def _answer(
    state: StateDep, train: RunDep, request: Request, text: str, params: dict[str, list[str]]
) -> Response:
    state.rate_limits.check(train.uid, train.registration.policy.data_access.queries_per_minute)
    answer = await run_query(
        state,
        train,
        QueryRequest(
            text=text,
            accept=request.headers.get("accept"),
            default_graph_uris=params.get("default-graph-uri", []),
            named_graph_uris=params.get("named-graph-uri", []),
        ),
    )
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
) -> Response:
    """Run a read-only SPARQL query given in the URL."""
    params = parse_qs(request.url.query, keep_blank_values=True)
    text = _one(params.get("query", []), "query")
    return await _answer(state, train, request, text, params)


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
                            "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                            "named-graph-uri": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["query"],
                    }
                },
            },
        }
    },
)
async def sparql_post(request: Request, state: StateDep, train: RunDep) -> Response:
    """Run a read-only SPARQL query sent as a form or as ``application/sparql-query``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, state.settings.MAX_REQUEST_BYTES)
    url_params = parse_qs(request.url.query, keep_blank_values=True)
    if content_type == "application/sparql-update":
        raise UpdateRefused("SPARQL updates are refused: the data store is read-only")
    if content_type == "application/sparql-query":
        return await _answer(state, train, request, _decode(body), url_params)
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(_decode(body), keep_blank_values=True)
        if "update" in form:
            raise UpdateRefused("SPARQL updates are refused: the data store is read-only")
        params = {**url_params, **{k: v for k, v in form.items() if k != "query"}}
        return await _answer(state, train, request, _one(form.get("query", []), "query"), params)
    raise UnsupportedMediaType("send application/sparql-query or application/x-www-form-urlencoded")
