"""The request-size limit on the wire: raw HTTP/1.1 against the station API as it is served.

The attacker writes bytes to the socket that no client library would: a body that is itself a
second request (pipelined behind a refused one, the way a request would be smuggled through a
shared ingress connection), ``Transfer-Encoding`` and ``Content-Length`` together, a chunk size
no memory holds, a body of one-byte chunks. Each must end in one refusal and a closed
connection, with nothing registered and nothing answered on behalf of the hidden request.
The station runs under uvicorn on 127.0.0.1 with an 8 KiB request limit.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import uvicorn
from security_channels_kit import OPERATOR_TOKEN, make_store, registration
from stationkit import started_station, station_settings

from pht_contract.wire import HEALTH_PATH, TRAIN_REGISTRATION_PATH
from pht_station_api.app import create_internal_app
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_REQUEST = 8192
READ_SECONDS = 5.0
#: A status line, wherever a response starts (a pipelined one follows the last body directly).
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[StationState, int]]:
    store = make_store(tmp_path_factory.mktemp("wire") / "store", patients=5)
    settings = station_settings(
        store, tmp_path_factory.mktemp("wire-state"), MAX_REQUEST_BYTES=MAX_REQUEST
    )
    async with started_station(settings) as state:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            create_internal_app(state), log_level="warning", access_log=False, http="h11"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.02)
        try:
            yield state, port
        finally:
            server.should_exit = True
            await task
            listener.close()


async def exchange(port: int, raw: bytes) -> bytes:
    """Write ``raw`` at once and read until the server closes (or stops answering)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    received = b""
    try:
        while True:
            piece = await asyncio.wait_for(reader.read(65536), READ_SECONDS)
            if not piece:
                break
            received += piece
    except (TimeoutError, ConnectionResetError):
        pass
    finally:
        writer.close()
    return received


def statuses(received: bytes) -> list[int]:
    """The status code of every response in the stream, in order."""
    return [int(status) for status in STATUS_LINE.findall(received)]


def smuggled_registration(uid_token: str) -> tuple[str, bytes]:
    """A complete, valid registration request: what the attacker hides in a body."""
    reg = registration(uid_token)
    body = json.dumps(reg.wire()).encode()
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    request = (
        f"PUT {path} HTTP/1.1\r\nHost: station\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    return reg.uid, request


def head(method: str, path: str, *lines: str) -> bytes:
    fields = "".join(f"{line}\r\n" for line in lines)
    return f"{method} {path} HTTP/1.1\r\nHost: station\r\n{fields}\r\n".encode()


def registration_head(uid: str, *lines: str) -> bytes:
    return head(
        "PUT",
        TRAIN_REGISTRATION_PATH.format(uid=uid),
        f"Authorization: Bearer {OPERATOR_TOKEN}",
        "Content-Type: application/json",
        *lines,
    )


async def test_a_request_hidden_in_a_refused_body_is_never_served(
    served: tuple[StationState, int],
) -> None:
    state, port = served
    uid, hidden = smuggled_registration("smuggled-1")
    padding = b" " * (MAX_REQUEST + 1 - len(hidden))
    body = hidden + padding
    outer = registration_head("outer-1", f"Content-Length: {len(body)}")
    received = await exchange(port, outer + body)
    assert statuses(received) == [413]
    assert state.registry.get(uid) is None
    # The hidden request was a valid one: sent on its own, it registers the train.
    assert statuses(
        await exchange(port, hidden.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
    ) == [201]
    assert state.registry.get(uid) is not None


async def test_a_request_after_a_refused_chunked_body_is_never_served(
    served: tuple[StationState, int],
) -> None:
    state, port = served
    uid, hidden = smuggled_registration("smuggled-2")
    oversized = b" " * (MAX_REQUEST + 1)
    chunked = f"{len(oversized):x}\r\n".encode() + oversized + b"\r\n0\r\n\r\n"
    outer = registration_head("outer-2", "Transfer-Encoding: chunked")
    received = await exchange(port, outer + chunked + hidden)
    assert statuses(received) == [413]
    assert state.registry.get(uid) is None


async def test_content_length_beside_chunked_never_lets_a_long_body_through(
    served: tuple[StationState, int],
) -> None:
    state, port = served
    reg = registration("both-framings")
    oversized = b" " * (MAX_REQUEST + 1)
    chunked = f"{len(oversized):x}\r\n".encode() + oversized + b"\r\n0\r\n\r\n"
    outer = registration_head(reg.uid, "Content-Length: 2", "Transfer-Encoding: chunked")
    received = await exchange(port, outer + chunked + head("GET", HEALTH_PATH))
    answered = statuses(received)
    assert answered and answered[0] in (400, 413)
    assert 200 not in answered  # the bytes after the body were not read as a request
    assert state.registry.get(reg.uid) is None


async def test_a_chunk_size_no_memory_holds_is_refused(served: tuple[StationState, int]) -> None:
    state, port = served
    reg = registration("huge-chunk")
    outer = registration_head(reg.uid, "Transfer-Encoding: chunked")
    # The size announces far more than memory holds; the bytes that follow pass the limit.
    chunk = b"fffffffffffffffffff\r\n" + b" " * (MAX_REQUEST + 1)
    received = await exchange(port, outer + chunk)
    answered = statuses(received)
    assert answered and answered[0] in (400, 413)
    assert state.registry.get(reg.uid) is None
    # The server is unharmed: the next connection is answered.
    assert statuses(await exchange(port, head("GET", HEALTH_PATH, "Connection: close"))) == [200]


async def test_one_byte_chunks_are_counted_like_any_body(served: tuple[StationState, int]) -> None:
    state, port = served
    reg = registration("one-byte-chunks")
    outer = registration_head(reg.uid, "Transfer-Encoding: chunked")
    body = b"1\r\n \r\n" * (MAX_REQUEST + 1) + b"0\r\n\r\n"
    received = await exchange(port, outer + body)
    assert statuses(received) == [413]
    assert state.registry.get(reg.uid) is None


async def test_each_pipelined_request_has_its_own_limit(served: tuple[StationState, int]) -> None:
    """A small request first does not lend the next one its unused budget, nor the reverse."""
    state, port = served
    reg = registration("pipelined")
    small = head("GET", HEALTH_PATH)
    oversized = b" " * (MAX_REQUEST + 1)
    large = registration_head(reg.uid, f"Content-Length: {len(oversized)}") + oversized
    received = await exchange(port, small + large + small)
    assert statuses(received) == [200, 413]
    assert state.registry.get(reg.uid) is None


async def test_a_compressed_body_is_measured_and_read_as_sent(
    served: tuple[StationState, int],
) -> None:
    """The station inflates no request body: a small gzip body that would inflate past the
    limit (or into a valid registration) is neither inflated nor stored."""
    state, port = served
    uid, hidden = smuggled_registration("compressed")
    document = hidden.split(b"\r\n\r\n", 1)[1]
    inflated = document[:-1] + b" " * (MAX_REQUEST * 4) + document[-1:]
    compressed = gzip.compress(inflated)
    assert len(compressed) < MAX_REQUEST < len(inflated)
    outer = registration_head(
        uid,
        "Content-Encoding: gzip",
        f"Content-Length: {len(compressed)}",
        "Connection: close",
    )
    received = await exchange(port, outer + compressed)
    answered = statuses(received)
    assert answered and 400 <= answered[0] < 500
    assert state.registry.get(uid) is None
