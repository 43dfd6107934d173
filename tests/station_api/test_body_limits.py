"""One request-size limit, enforced where the body is received: attacks on it get 413.

The station here has small limits (8 KiB for any request, 32 KiB for a data load) so that the
attacks stay quick: a chunked body without ``Content-Length``, a ``Content-Length`` that lies
about a longer body, and a declared length over the limit. Each gets a 413 with a reason, and
nothing of the request is stored (no registration, no triples, no result attempt).
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from stationkit import (
    bearer,
    client_for,
    make_store,
    operator_headers,
    register,
    registration,
    started_station,
    station_settings,
)

from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
)
from pht_station_api.app import create_internal_app
from pht_station_api.routers.registration import LOAD_PATH
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_REQUEST = 8192
MAX_LOAD = 32768
ATTACK_GRAPH = "urn:pht:graph:attack"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StationState]:
    store = make_store(tmp_path_factory.mktemp("limits") / "store", patients=5)
    settings = station_settings(
        store,
        tmp_path_factory.mktemp("limits-state"),
        max_request_bytes=MAX_REQUEST,
        max_load_bytes=MAX_LOAD,
    )
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def internal(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


async def chunks(total: int, size: int = 512) -> AsyncIterator[bytes]:
    """A body sent in chunks, so the request has no Content-Length."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


def refused(response: httpx.Response, reason: str = "RequestTooLarge") -> bool:
    body = response.json()
    return response.status_code == 413 and body["reason"] == reason and body["message"]


async def call_app(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes, pieces: int = 4
) -> tuple[int, int]:
    """Drive the ASGI app directly (a client library would correct a lying Content-Length).

    Returns the status and how many body messages the app asked for."""
    size = max(1, len(body) // pieces)
    messages = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    asked = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked <= len(messages):
            return {
                "type": "http.request",
                "body": messages[asked - 1],
                "more_body": asked < len(messages),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("internal.test", 80),
        "client": ("127.0.0.1", 1234),
        "state": {},
    }
    await app(scope, receive, send)
    return status, asked


async def uploads(internal: httpx.AsyncClient, uid: str) -> int:
    state = await internal.get(TRAIN_STATE_PATH.format(uid=uid), headers=operator_headers())
    return int(state.json()["uploads"])


async def triples(station: StationState) -> int:
    return (await station.store.statistics((ATTACK_GRAPH,))).triples


async def test_a_chunked_json_body_over_the_limit_registers_nothing(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    reg = registration("a-token")
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    response = await internal.put(
        path,
        content=chunks(MAX_REQUEST + 1),
        headers={**operator_headers(), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert refused(response)
    assert station.registry.get(reg.uid) is None


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    station: StationState,
) -> None:
    app = create_internal_app(station)
    reg = registration("b-token")
    headers = {
        **operator_headers(),
        "Content-Type": "application/json",
        "Content-Length": str(MAX_REQUEST + 1),
    }
    status, asked = await call_app(
        app, "PUT", TRAIN_REGISTRATION_PATH.format(uid=reg.uid), headers, b"{}"
    )
    assert (status, asked) == (413, 0)
    assert station.registry.get(reg.uid) is None


async def test_a_lying_content_length_is_caught_by_counting(station: StationState) -> None:
    app = create_internal_app(station)
    reg = registration("c-token")
    payload = json.dumps(reg.wire()).encode() + b" " * (MAX_REQUEST * 2)
    headers = {**operator_headers(), "Content-Type": "application/json", "Content-Length": "20"}
    status, _ = await call_app(
        app, "PUT", TRAIN_REGISTRATION_PATH.format(uid=reg.uid), headers, payload
    )
    assert status == 413
    assert station.registry.get(reg.uid) is None


async def test_a_query_body_over_the_limit_is_refused_and_audited_as_such(
    internal: httpx.AsyncClient,
) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery")
    response = await internal.post(
        SPARQL_PATH,
        content=chunks(MAX_REQUEST + 1),
        headers={**bearer(token), "Content-Type": "application/sparql-query"},
    )
    assert refused(response)


async def test_a_load_may_be_larger_than_a_request_but_not_larger_than_its_own_limit(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    path = f"{LOAD_PATH}?graph={ATTACK_GRAPH}"
    headers = {**operator_headers(), "Content-Type": "application/n-triples"}
    line = b"<urn:s> <urn:p> <urn:o> .\n"
    over = line * (MAX_LOAD // len(line) + 1)
    chunked = await internal.post(path, content=chunks_of(over), headers=headers)
    assert refused(chunked)
    lying = await call_app(
        create_internal_app(station),
        "POST",
        path.split("?")[0],
        {**headers, "Content-Length": "26"},
        over,
    )
    assert lying[0] == 413
    assert await triples(station) == 0
    # Between the two limits: more than any other request may carry, accepted for a load.
    count = MAX_REQUEST // 20
    distinct = b"".join(b"<urn:s%d> <urn:p> <urn:o> .\n" % i for i in range(count))
    assert MAX_REQUEST < len(distinct) <= MAX_LOAD
    loaded = await internal.post(path, content=distinct, headers=headers)
    assert loaded.status_code == 200, loaded.text
    assert await triples(station) == count


def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return pieces()


async def test_a_result_over_the_policy_limit_is_not_kept(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal)
    limit = reg.policy.disclosure.max_result_bytes
    assert limit > MAX_REQUEST
    chunked = await internal.put(
        RESULT_PATH, content=chunks(limit + 1, 65536), headers=bearer(token)
    )
    assert refused(chunked, "ResultTooLarge")
    assert "policy" in chunked.json()["message"]
    status, _ = await call_app(
        create_internal_app(station),
        "PUT",
        RESULT_PATH,
        {**bearer(token), "Content-Type": "application/json", "Content-Length": "2"},
        b"{}" + b" " * limit,
    )
    assert status == 413
    assert await uploads(internal, reg.uid) == 0
