"""The operator credential on its way to the station API's internal listener.

It opens the listener that registers runs (which data a run may read): a proxy that a cluster
or a careless ``extraEnv`` puts into the operator's environment must never be handed it. The
operator's Kubernetes client ignores such proxies already; its station API client does too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pht_operator.stationapi import StationApi

OPERATOR_CREDENTIAL = "operator-internal-credential"


class Recorded:
    def __init__(self) -> None:
        self.authorizations: list[str | None] = []


def _listen(recorded: Recorded) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            recorded.authorizations.append(self.headers.get("Authorization"))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


Listeners = tuple[str, Recorded, str, Recorded]


@pytest.fixture
def station_and_proxy() -> Iterator[Listeners]:
    """The station API's internal listener and a proxy, each with its URL."""
    station, proxy = Recorded(), Recorded()
    servers = [_listen(station), _listen(proxy)]
    urls = [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    yield urls[0], station, urls[1], proxy
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_a_proxy_from_the_environment_never_sees_the_operator_credential(
    monkeypatch: pytest.MonkeyPatch, station_and_proxy: Listeners
) -> None:
    station_url, station, proxy_url, proxy = station_and_proxy
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy_url)
    client = StationApi(station_url, lambda: OPERATOR_CREDENTIAL, timeout=5.0)
    try:
        await client.deregister("0b4f0a56-7d43-4c43-9d57-6a1c1d1e2f30")
    finally:
        await client.aclose()
    assert proxy.authorizations == []
    assert station.authorizations == [f"Bearer {OPERATOR_CREDENTIAL}"]
