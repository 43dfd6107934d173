"""The steward's token on its way to the station API: no proxy, no redirect may read it.

The attacker controls something between the CLI and the station: a proxy named in the
environment (``HTTP_PROXY`` set for the whole machine, or for every pod of a cluster), or a
server the station URL leads to that answers with a redirect to a host of the attacker's. The
kubeconfig credential opens the Kubernetes API as well, the operator credential the station's
internal listener: neither may reach anyone but the host the user named.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pht_cli.credentials import is_local_or_encrypted, may_use_environment_proxies
from pht_cli.main import main

KUBECONFIG_TOKEN = "steward-kubeconfig-token"
OPERATOR_TOKEN = "operator-internal-credential"
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@dataclass
class Listener:
    """A plain HTTP server on 127.0.0.1 that records what reaches it and answers one way."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"items": []})
    location: str | None = None
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            listener.seen.append((self.path, self.headers.get("Authorization")))
            data = json.dumps(listener.body).encode()
            self.send_response(listener.status)
            if listener.location is not None:
                self.send_header("Location", listener.location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    """Two listeners: ``[0]`` plays the station, ``[1]`` the attacker's proxy or host."""
    started: list[tuple[Listener, ThreadingHTTPServer]] = []
    for _ in range(2):
        listener = Listener()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(listener))
        listener.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((listener, server))
    yield [listener for listener, _ in started]
    for _, server in started:
        server.shutdown()
        server.server_close()


def _kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://kubernetes.invalid"}}],
        "users": [{"name": "steward", "user": {"token": KUBECONFIG_TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "steward"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _proxy_everything_through(monkeypatch: pytest.MonkeyPatch, proxy: Listener) -> None:
    for name in ("NO_PROXY", "no_proxy", "PHT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, proxy.url)


def _tokens_seen(listener: Listener) -> list[str | None]:
    return [authorization for _, authorization in listener.seen]


def test_a_proxy_from_the_environment_never_sees_the_kubeconfig_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listeners: list[Listener]
) -> None:
    station, proxy = listeners
    _proxy_everything_through(monkeypatch, proxy)
    port = station.url.rsplit(":", 1)[1]
    # The usual port-forward URL: "localhost" over plain HTTP, where the token may go.
    code = main(
        ["held", "--url", f"http://localhost:{port}", "--kubeconfig", str(_kubeconfig(tmp_path))]
    )
    assert proxy.seen == []
    assert code == 0
    assert _tokens_seen(station) == [f"Bearer {KUBECONFIG_TOKEN}"]


def test_a_proxy_from_the_environment_never_sees_the_operator_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listeners: list[Listener]
) -> None:
    station, proxy = listeners
    _proxy_everything_through(monkeypatch, proxy)
    station.body = {"graph": "urn:g", "quads": 1}
    token_file = tmp_path / "operator-token"
    token_file.write_text(OPERATOR_TOKEN)
    data = tmp_path / "data.ttl"
    data.write_text("<urn:a> <urn:b> <urn:c> .\n")
    code = main(["load", str(data), "--api", station.url, "--operator-token-file", str(token_file)])
    assert proxy.seen == []
    assert code == 0
    assert _tokens_seen(station) == [f"Bearer {OPERATOR_TOKEN}"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_station_url_is_not_followed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    listeners: list[Listener],
    status: int,
) -> None:
    station, elsewhere = listeners
    monkeypatch.delenv("PHT_TOKEN", raising=False)
    station.status = status
    station.body = {"reason": "Moved", "message": "see elsewhere"}
    station.location = f"{elsewhere.url}/stewards/held"
    code = main(["held", "--url", station.url, "--kubeconfig", str(_kubeconfig(tmp_path))])
    assert elsewhere.seen == []
    assert code != 0
    err = capsys.readouterr().err
    assert KUBECONFIG_TOKEN not in err


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, {"unexpected": True}), (200, "an answer of the wrong shape"), (200, [1, 2])],
    ids=["refusal", "text", "list"],
)
def test_the_token_is_not_printed_with_debug_when_the_station_misbehaves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    listeners: list[Listener],
    status: int,
    body: Any,
) -> None:
    """A station answering what the CLI cannot read gets a traceback (``--debug``): the
    traceback shows code, never the token the request carried."""
    station, _ = listeners
    monkeypatch.delenv("PHT_TOKEN", raising=False)
    station.status = status
    station.body = body
    code = main(
        ["--debug", "held", "--url", station.url, "--kubeconfig", str(_kubeconfig(tmp_path))]
    )
    assert code != 0
    captured = capsys.readouterr()
    assert _tokens_seen(station) == [f"Bearer {KUBECONFIG_TOKEN}"]
    # An answer of the wrong shape is the unexpected error whose traceback --debug prints.
    assert ("Traceback" in captured.err) is (status == 200)
    assert KUBECONFIG_TOKEN not in captured.out + captured.err


@pytest.mark.parametrize(
    ("url", "proxied"),
    [
        ("https://station.example.org", True),
        ("http://localhost:8080", False),
        ("http://127.0.0.1:8080", False),
        ("http://station-api.pht-system:8081", False),
        ("HTTP://localhost:8080", False),
    ],
)
def test_only_https_may_go_through_an_environment_proxy(url: str, proxied: bool) -> None:
    assert may_use_environment_proxies(url) is proxied


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\\@localhost/",
        "http://localhost\\@evil.example/",
        "http://localhost:80@evil.example/",
        "http://evil.example#@localhost",
        "http://evil.example?@localhost",
        "http://evil.example;@localhost",
        "http://[::1]@evil.example",
        "http://evil.example:@localhost",
        "http://localhost@evil.example@localhost",
        "http://localhost%2eevil.example",
        "http://127.0.0.1%00.evil.example",
        "http://localhost.evil.example",
        "http://0x7f.0.0.1",
    ],
)
def test_the_loopback_check_and_the_http_client_agree_on_the_host(url: str) -> None:
    """A URL the check reads as this machine is one the HTTP client sends to this machine."""
    if not is_local_or_encrypted(url):
        return
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return  # never sent anywhere
    assert host == "localhost" or ipaddress.ip_address(host).is_loopback
