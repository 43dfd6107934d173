"""The operator's network layer on the event loop's own sockets and TLS, through the operator's
HTTP transport, against real HTTP(S) servers on 127.0.0.1: answers arrive whole, connections
are reused and replaced when the server closed them, and timeouts, refused connections and
untrusted certificates are the HTTP client's usual errors."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pht_operator.netstreams import PAUSE_BYTES, TLS_READ_BYTES
from pht_operator.transport import http_transport

BIG = 4 * PAUSE_BYTES + 123


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Server:
    """An aiohttp server on 127.0.0.1 that records the client port of every request."""

    def __init__(self, url: str, ports: list[int], cert: Path | None) -> None:
        self.url = url
        self.ports = ports
        self.cert = cert


@pytest.fixture(params=["http", "https"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    ports: list[int] = []

    async def echo(req: web.Request) -> web.Response:
        peer = req.transport.get_extra_info("peername") if req.transport else None
        ports.append(peer[1] if peer else -1)
        body = await req.read()
        return web.json_response({"size": len(body), "m": req.method})

    async def big(req: web.Request) -> web.Response:
        return web.Response(body=b"z" * BIG)

    async def slow(req: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def stream(req: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(req)
        for n in range(3):
            await response.write(f'{{"n": {n}}}\n'.encode())
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    app = web.Application(client_max_size=2 * BIG)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app, keepalive_timeout=float(getattr(request, "keepalive", 75.0)))
    await runner.setup()
    cert: Path | None = None
    context: ssl.SSLContext | None = None
    if request.param == "https":
        cert, key = _certificate(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(f"{request.param}://127.0.0.1:{port}", ports, cert)
    finally:
        await runner.cleanup()


def _client(server: Server, timeout: float = 10.0) -> httpx2.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if server.cert is not None:
        verify = ssl.create_default_context(cafile=str(server.cert))
    return httpx2.AsyncClient(transport=http_transport(verify), timeout=timeout)


async def test_requests_are_answered_on_one_reused_connection(server: Server) -> None:
    async with _client(server) as client:
        for method in ("POST", "PATCH", "DELETE"):
            answer = await client.request(method, f"{server.url}/echo", content=b"x" * 500)
            assert answer.status_code == 200
            assert answer.json() == {"size": 500, "m": method}
    assert len(server.ports) == 3
    assert len(set(server.ports)) == 1


async def test_a_large_answer_and_a_large_body_arrive_whole(server: Server) -> None:
    async with _client(server) as client:
        answer = await client.get(f"{server.url}/big")
        assert answer.content == b"z" * BIG
        echoed = await client.post(f"{server.url}/echo", content=b"y" * BIG)
        assert echoed.json()["size"] == BIG
        # Read slowly: the connection stops being read while the answer waits, then resumes.
        async with client.stream("GET", f"{server.url}/big") as response:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                await asyncio.sleep(0.005)
        assert received == BIG


async def test_a_streamed_answer_comes_line_by_line(server: Server) -> None:
    async with _client(server) as client, client.stream("GET", f"{server.url}/stream") as response:
        lines = [line async for line in response.aiter_lines() if line]
    assert lines == ['{"n": 0}', '{"n": 1}', '{"n": 2}']


@pytest.mark.parametrize("server", ["http"], indirect=True)
async def test_a_connection_the_server_closed_is_replaced(server: Server) -> None:
    async with _client(server) as client:
        first = await client.post(f"{server.url}/echo", content=b"1")
        # The server goes away with the idle connection open; a new one is made for the next.
        pool = client._transport._pool  # type: ignore[attr-defined]
        for connection in list(pool.connections):
            stream = connection._connection._network_stream
            stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        await asyncio.sleep(0.1)
        second = await client.post(f"{server.url}/echo", content=b"2")
    assert first.status_code == second.status_code == 200
    assert len(set(server.ports)) == 2


async def test_a_slow_answer_is_a_read_timeout(server: Server) -> None:
    async with _client(server, timeout=0.3) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(f"{server.url}/slow")


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens on it
    async with httpx2.AsyncClient(transport=http_transport()) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize("server", ["https"], indirect=True)
async def test_an_untrusted_certificate_is_a_connect_error(server: Server) -> None:
    async with httpx2.AsyncClient(transport=http_transport(ssl.create_default_context())) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"{server.url}/echo")
    assert server.ports == []


@pytest.mark.parametrize("server", ["https"], indirect=True)
async def test_a_tls_connection_reads_into_a_small_buffer(server: Server) -> None:
    async with _client(server) as client:
        assert (await client.get(f"{server.url}/big")).content == b"z" * BIG
        pool = client._transport._pool  # type: ignore[attr-defined]
        (connection,) = pool.connections
        stream = connection._connection._network_stream._inner
        tls = stream._transport._ssl_protocol
        # The answer above came through it; the buffer stays small (asyncio's is 256 KiB).
        assert tls.max_size == TLS_READ_BYTES
        assert len(tls._ssl_buffer) == TLS_READ_BYTES


async def test_a_closed_connection_lets_go_of_its_socket_at_once(server: Server) -> None:
    async with _client(server) as client:
        assert (await client.post(f"{server.url}/echo", content=b"1")).status_code == 200
        pool = client._transport._pool  # type: ignore[attr-defined]
        (connection,) = pool.connections
        sock = connection._connection._network_stream.get_extra_info("socket")
    # The client closed its pool; no TLS goodbye is awaited before the socket is closed: it is
    # closed on the event loop's next turn, before the server could have answered.
    await asyncio.sleep(0)
    assert sock.fileno() == -1
