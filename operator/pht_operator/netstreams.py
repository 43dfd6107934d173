"""The network layer under the operator's HTTP transport: asyncio's own sockets and TLS.

httpcore2 reaches the network through anyio by default, and anyio wraps every read and write of
a request in a cancel scope (a timeout), a checkpoint and its own TLS stream: on the operator's
busy event loop that bookkeeping cost about as much CPU as the TLS work itself. The operator
runs on asyncio only, so :class:`AsyncioBackend` opens connections with the event loop's own
transports (``create_connection``, ``start_tls``) and :class:`AsyncioStream` reads and writes
them through a small protocol: a read that finds data already received returns it at once, and
a timer is armed only when a read or a write has to wait.

The errors are httpcore2's (``ConnectError``, ``ReadTimeout``, ``WriteError``...), so the HTTP
client above reports them as it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, Final

import httpcore2
from httpcore2._utils import is_socket_readable

#: Received bytes held before the socket is no longer read (a slow reader of a large answer).
PAUSE_BYTES: Final = 256 * 1024
#: The encrypted bytes one socket read of a TLS connection takes (two full TLS records).
#: asyncio's TLS layer allocates 256 KiB per connection for it, all of it resident: with a
#: pool of connections to the API server that was megabytes of the operator's memory.
TLS_READ_BYTES: Final = 32 * 1024


class _Expired(Exception):
    """A read or write waited longer than its timeout."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


class StreamProtocol(asyncio.Protocol):
    """Keeps what the connection received until it is read, and tells a waiting read or
    write when it can go on (data, end of stream, a closed connection, room to write)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        #: What a waiting read, and a write waiting for room, wait on.
        self.waiters: dict[str, asyncio.Future[None]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > PAUSE_BYTES and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.error = exc
        self.writing_paused = False
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, what: str, timeout: float | None) -> None:
        """Until something changes (see :meth:`_wake`); :class:`_Expired` after ``timeout``.
        ``what``: ``"read"`` or ``"write"`` (one of each may wait at a time)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self.waiters[what] = waiter
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            del self.waiters[what]
            if timer is not None:
                timer.cancel()

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what was received (at least one byte: call when ``size``)."""
        chunk = self.chunks[0]
        if len(chunk) <= max_bytes:
            self.chunks.popleft()
        else:
            self.chunks[0] = chunk[max_bytes:]
            chunk = chunk[:max_bytes]
        self.size -= len(chunk)
        if self.reading_paused and self.size <= PAUSE_BYTES // 2 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk


class AsyncioStream(httpcore2.AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore2 reads and writes it."""

    def __init__(self, transport: asyncio.Transport, protocol: StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tls = transport.get_extra_info("ssl_object") is not None
        protocol.transport = transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        while not protocol.size:
            if protocol.eof:
                if protocol.error is not None:
                    raise httpcore2.ReadError(str(protocol.error) or "connection lost")
                return b""
            try:
                await protocol.wait("read", timeout)
            except _Expired:
                raise httpcore2.ReadTimeout("timed out reading from the server") from None
        return protocol.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise httpcore2.WriteError("the connection is closed")
        try:
            self._transport.write(buffer)
        except (OSError, RuntimeError) as exc:
            raise httpcore2.WriteError(str(exc)) from exc
        while protocol.writing_paused:  # the kernel's buffer is full: wait until it drains
            try:
                await protocol.wait("write", timeout)
            except _Expired:
                raise httpcore2.WriteTimeout("timed out writing to the server") from None
        if protocol.lost and protocol.error is not None:
            raise httpcore2.WriteError(str(protocol.error))

    async def aclose(self) -> None:
        if self._tls:
            # At once, as anyio's TLS stream did (no close_notify exchange): asyncio's graceful
            # TLS close keeps the connection for up to 30 s waiting for the server's answer.
            self._transport.abort()
        else:
            self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            secured = await asyncio.wait_for(
                loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                ),
                timeout,
            )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore2.ConnectTimeout("timed out during the TLS handshake") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise httpcore2.ConnectError(str(exc)) from exc
        if secured is None:  # pragma: no cover - only for a transport closed meanwhile
            raise httpcore2.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(secured, asyncio.Transport)
        _shrink_tls_buffer(self._transport)
        return AsyncioStream(secured, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            protocol = self._protocol
            return bool(protocol.size or protocol.eof) or is_socket_readable(
                transport.get_extra_info("socket")
            )
        return None


def _shrink_tls_buffer(raw: asyncio.Transport) -> None:
    """Give asyncio's TLS layer on ``raw`` a read buffer of :data:`TLS_READ_BYTES`.

    Its ``SSLProtocol`` reads the socket into a buffer of ``max_size`` bytes allocated when the
    connection starts; after the handshake nothing holds that buffer between two reads, so it
    can be replaced. Python versions whose TLS layer lacks these attributes keep theirs."""
    tls = raw.get_protocol()
    if not (hasattr(tls, "_ssl_buffer") and hasattr(tls, "_ssl_buffer_view")):
        return  # pragma: no cover - another asyncio TLS implementation
    if getattr(tls, "max_size", 0) <= TLS_READ_BYTES:
        return  # pragma: no cover - already small
    buffer = bytearray(TLS_READ_BYTES)
    tls.max_size = TLS_READ_BYTES  # type: ignore[attr-defined]
    tls._ssl_buffer = buffer
    tls._ssl_buffer_view = memoryview(buffer)


def _apply(sock: socket.socket | None, options: Iterable[httpcore2.SOCKET_OPTION] | None) -> None:
    if sock is None:
        return
    for option in options or ():
        sock.setsockopt(*option)


class AsyncioBackend(httpcore2.AsyncNetworkBackend):
    """Opens connections with the running asyncio event loop's transports."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(StreamProtocol, host, port, local_addr=local), timeout
            )
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        assert isinstance(transport, asyncio.Transport)
        # asyncio sets TCP_NODELAY on its TCP sockets; options asked for come on top.
        with contextlib.suppress(OSError):
            _apply(transport.get_extra_info("socket"), socket_options)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_unix_connection(StreamProtocol, path), timeout
            )
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"timed out connecting to {path}") from exc
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        assert isinstance(transport, asyncio.Transport)
        with contextlib.suppress(OSError):
            _apply(transport.get_extra_info("socket"), socket_options)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
