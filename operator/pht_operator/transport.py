"""The operator's HTTP transport: each request leaves in one write.

The HTTP stack under the operator's clients (httpx2 over httpcore2) writes a request's headers
and its body separately: two TLS records and two ``send`` system calls for every status patch,
Event and object created. On the loopback or a node-local network the kernel's cost of a write
is paid by the writer, and with a couple of small writes per request it was the largest single
cost of the operator's Kubernetes calls. :class:`CoalescingStream` keeps what the client writes
and sends it as one buffer when the client first reads (the answer can only come after the
request) or when the buffer reaches :data:`FLUSH_BYTES` (a large body still streams).

It also answers the connection pool's "is this idle connection still open?" question (asked
for every pooled connection on every request) from the socket it kept at connect time, rather
than asking the TLS stream for all of its attributes each time.

:func:`http_transport` builds an ``httpx2`` transport with this network layer, over the event
loop's own sockets and TLS (:mod:`pht_operator.netstreams`, not anyio's); the Kubernetes
client, the liveness watch and the station API client use it.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable
from typing import Any, Final

import httpcore2
import httpx2
from httpcore2._utils import is_socket_readable

from pht_operator.netstreams import AsyncioBackend

#: Buffered request bytes beyond which they are sent before the client reads.
FLUSH_BYTES: Final = 64 * 1024


class CoalescingStream(httpcore2.AsyncNetworkStream):
    """A network stream that sends what was written in one buffer, before the next read."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._write_timeout: float | None = None
        # The socket under the stream (under asyncio a ``TransportSocket``, which has the
        # ``fileno`` the readability check needs); the same for the stream's whole life.
        self._socket: Any = inner.get_extra_info("socket")

    @property
    def pending_bytes(self) -> int:
        """Bytes written and not sent yet."""
        return self._pending_bytes

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._pending.append(buffer)
        self._pending_bytes += len(buffer)
        self._write_timeout = timeout
        if self._pending_bytes >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        """Send what was written so far (one write to the stream below)."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        await self._inner.write(data, self._write_timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # As the HTTP client does for a failed write of a request: read the answer anyway (a
        # server may have closed early with a well-formed error response).
        with contextlib.suppress(httpcore2.WriteError):
            await self.flush()
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        await self.flush()
        secured = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return CoalescingStream(secured)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        if info == "socket" and self._socket is not None:
            return self._socket
        return self._inner.get_extra_info(info)


class CoalescingBackend(httpcore2.AsyncNetworkBackend):
    """Opens connections through ``inner`` (the event loop's own, :class:`AsyncioBackend`, by
    default) as :class:`CoalescingStream`."""

    def __init__(self, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else AsyncioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return CoalescingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return CoalescingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def http_transport(
    verify: ssl.SSLContext | bool = True, backend: httpcore2.AsyncNetworkBackend | None = None
) -> httpx2.AsyncHTTPTransport:
    """An ``httpx2`` transport (no proxy from the environment) whose connections coalesce each
    request into one write; ``verify``: the TLS context (CA, client certificate) to use."""
    transport = httpx2.AsyncHTTPTransport(verify=verify, trust_env=False)
    pool = transport._pool
    if not isinstance(pool, httpcore2.AsyncConnectionPool):  # pragma: no cover - no proxy here
        raise TypeError("expected a direct connection pool")
    # httpx2 builds its pool without a choice of network layer; the pool's backend is the one
    # attribute to swap (both packages are pinned in the lock file; the tests check it took).
    pool._network_backend = CoalescingBackend(backend)
    return transport
