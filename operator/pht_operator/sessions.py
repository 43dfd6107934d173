"""The operator's HTTP client: one aiohttp session per peer (the Kubernetes API, the station API).

aiohttp parses answers in C and sends a small request in one write; for the operator's short
JSON calls (status patches, Events, the objects of a run, registrations) it spends about a third
of the CPU per request of the ``httpx`` stack it replaced (see ``docs/performance.md``).

Every session here is locked down the same way:

* no proxy from the environment (a proxy would be handed the operator's credentials);
* no cookie jar (neither peer sets cookies; nothing one answer says is sent with the next);
* no redirects followed (a redirect must not carry a credential to another address);
* a timeout for each call, and a bound on the connections kept;
* answers asked for and read uncompressed (a small compressed body can inflate to gigabytes),
  and read up to :data:`MAX_ANSWER_BYTES`.

The session is made on first use, inside the running event loop, as aiohttp requires.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp

#: Connections kept open to one peer at most (the operator's workers, Event posting and the
#: long-lived watches share them).
CONNECTION_LIMIT: Final = 100
#: The most bytes of one answer read (a listing page of the operator's objects is a few MiB).
MAX_ANSWER_BYTES = 32 * 1024 * 1024


class Unreachable(Exception):
    """No answer: the peer could not be reached, broke the connection or did not answer in
    time. The message names only the kind of failure (never a URL or a credential)."""


class BadAnswer(Unreachable):
    """An answer that is not read: larger than :data:`MAX_ANSWER_BYTES` or compressed (the
    operator asks for uncompressed answers)."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    content_type: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Session:
    """Calls to one peer (``base_url``) over a lazily made ``aiohttp`` session."""

    def __init__(
        self, base_url: str, ssl_context: ssl.SSLContext | None = None, timeout: float = 15.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=CONNECTION_LIMIT,
                ssl=self._ssl if self._ssl is not None else True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                headers={"Accept-Encoding": "identity"},
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        """One call; the whole answer is read. :class:`Unreachable` when there is none."""
        try:
            async with self._client().request(
                method,
                self.base_url + path,
                data=body,
                headers=headers,
                params=params,
                allow_redirects=False,
            ) as response:
                return _answer(response, await _read(response))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unreachable(type(exc).__name__) from exc

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        params: Mapping[str, str],
        headers: Mapping[str, str] | None,
        read_timeout: float,
        deadline: float,
    ) -> AsyncIterator[tuple[Answer, AsyncIterator[bytes]]]:
        """A long-lived GET (a watch): its status (the body read only when it failed) and the
        answer's chunks as they arrive, until the peer ends it, nothing came for
        ``read_timeout`` seconds or ``deadline`` seconds have passed (:class:`Unreachable`)."""
        timeout = aiohttp.ClientTimeout(total=deadline, sock_connect=30, sock_read=read_timeout)
        try:
            async with self._client().get(
                self.base_url + path,
                params=params,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                failed = not 200 <= response.status < 300
                if not failed:
                    _uncompressed(response)
                head = _answer(response, await _read(response) if failed else b"")
                yield head, _chunks(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Unreachable(type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _uncompressed(response: aiohttp.ClientResponse) -> None:
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        response.close()
        raise BadAnswer("CompressedAnswer")


async def _read(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, uncompressed and at most :data:`MAX_ANSWER_BYTES`
    (:class:`BadAnswer` otherwise: the connection is closed, the rest never read)."""
    _uncompressed(response)
    limit = MAX_ANSWER_BYTES
    if response.content_length is not None and response.content_length > limit:
        response.close()
        raise BadAnswer("AnswerTooLarge")
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            response.close()
            raise BadAnswer("AnswerTooLarge")
        parts.append(chunk)
    return b"".join(parts)


def _answer(response: aiohttp.ClientResponse, body: bytes) -> Answer:
    return Answer(response.status, response.reason or "", response.content_type, body)


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise Unreachable(type(exc).__name__) from exc
