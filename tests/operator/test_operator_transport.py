"""The operator's HTTP transport sends each request in one write, reuses open connections and
notices connections the server closed; against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore2
import httpx2
import pytest
from aiohttp import web

from pht_operator.transport import FLUSH_BYTES, CoalescingStream, http_transport


class RecordingStream(httpcore2.AsyncNetworkStream):
    """Passes everything on to the real stream and records the sizes of the writes."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream, writes: list[int]) -> None:
        self._inner = inner
        self._writes = writes

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._writes.append(len(buffer))
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class RecordingBackend(httpcore2.AnyIOBackend):
    """anyio's network layer, counting connections and recording every write."""

    def __init__(self) -> None:
        self.connects = 0
        self.writes: list[int] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.connects += 1
        stream = await super().connect_tcp(host, port, timeout, local_address, socket_options)
        return RecordingStream(stream, self.writes)


@pytest.fixture
async def echo_server(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 answering the size and a digest of each request body;
    ``keepalive`` (indirect parameter, seconds) is how long it keeps an idle connection."""
    keepalive = float(getattr(request, "param", 75.0))

    async def echo(req: web.Request) -> web.Response:
        body = await req.read()
        return web.json_response({"size": len(body), "head": body[:16].decode(), "m": req.method})

    app = web.Application(client_max_size=4 * FLUSH_BYTES)
    app.router.add_route("*", "/echo", echo)
    runner = web.AppRunner(app, keepalive_timeout=keepalive)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_request_with_a_body_leaves_in_one_write(echo_server: str) -> None:
    backend = RecordingBackend()
    body = {"status": {"summary": "Queued"}, "pad": "x" * 300}
    async with httpx2.AsyncClient(transport=http_transport(backend=backend)) as client:
        for method in ("POST", "PATCH", "PUT"):
            answer = await client.request(method, f"{echo_server}/echo", json=body)
            assert answer.status_code == 200
            sent = json.dumps(body, separators=(",", ":")).encode()
            assert answer.json() == {"size": len(sent), "head": sent[:16].decode(), "m": method}
        answer = await client.delete(f"{echo_server}/echo")
        assert answer.json()["m"] == "DELETE"
    # Headers and body of each request in one write; the four requests on one connection.
    assert len(backend.writes) == 4
    assert all(size > 300 for size in backend.writes[:3])
    assert backend.connects == 1


async def test_a_large_body_is_sent_whole_without_waiting_for_a_read(echo_server: str) -> None:
    backend = RecordingBackend()
    payload = b"y" * (3 * FLUSH_BYTES + 17)
    async with httpx2.AsyncClient(transport=http_transport(backend=backend)) as client:
        answer = await client.post(f"{echo_server}/echo", content=payload)
    assert answer.json()["size"] == len(payload)
    assert sum(backend.writes) > len(payload)  # the body and the headers, all of it sent


@pytest.mark.parametrize("echo_server", [0.05], indirect=True)
async def test_a_connection_the_server_closed_is_not_reused(echo_server: str) -> None:
    backend = RecordingBackend()
    async with httpx2.AsyncClient(transport=http_transport(backend=backend)) as client:
        first = await client.post(f"{echo_server}/echo", json={"n": 1})
        await asyncio.sleep(0.5)  # the server closes the idle connection meanwhile
        second = await client.post(f"{echo_server}/echo", json={"n": 2})
        third = await client.post(f"{echo_server}/echo", json={"n": 3})
    assert first.status_code == second.status_code == third.status_code == 200
    # A fresh connection after the server's close; the open one is reused right after.
    assert backend.connects == 2


class FakeStream(httpcore2.AsyncNetworkStream):
    """A stream below the transport: records writes, answers reads from a script."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes]] = []
        self.closed = False
        self.fail_writes = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.log.append(("read", b""))
        return b"answer"

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self.fail_writes:
            raise httpcore2.WriteError("the peer closed")
        self.log.append(("write", buffer))

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> Any:
        return "tls-object" if info == "ssl_object" else None


async def test_writes_wait_for_the_read_and_go_out_first_in_order() -> None:
    below = FakeStream()
    stream = CoalescingStream(below)
    await stream.write(b"GET / HTTP/1.1\r\n\r\n")
    await stream.write(b"")
    await stream.write(b"body")
    assert below.log == []
    assert stream.pending_bytes == len(b"GET / HTTP/1.1\r\n\r\nbody")
    assert await stream.read(100) == b"answer"
    assert below.log == [("write", b"GET / HTTP/1.1\r\n\r\nbody"), ("read", b"")]
    assert stream.pending_bytes == 0
    assert stream.get_extra_info("ssl_object") == "tls-object"


async def test_a_failed_write_still_lets_the_answer_be_read() -> None:
    below = FakeStream()
    below.fail_writes = True
    stream = CoalescingStream(below)
    await stream.write(b"request")
    assert await stream.read(100) == b"answer"
    assert stream.pending_bytes == 0


async def test_closing_drops_what_was_not_sent() -> None:
    below = FakeStream()
    stream = CoalescingStream(below)
    await stream.write(b"request")
    await stream.aclose()
    assert below.closed
    assert below.log == []
    assert stream.pending_bytes == 0
