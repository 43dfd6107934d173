"""A train signals through the station's metrics; an outsider reads them.

The attack: modulate how many failing requests a run sends per interval and read the per-request
counter from ``/metrics`` on the public listener. Against a real ``pht api`` process: neither the
public nor the train-facing listener serves metrics, the metrics listener wants its token, and
what it serves changes only once per snapshot tick, whatever the train does in between.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from security_channels_kit import (
    OPERATOR_TOKEN,
    bearer,
    identities_file,
    make_store,
    registration,
)

from pht_contract.wire import SPARQL_PATH, TRAIN_REGISTRATION_PATH
from pht_station_api.metrics import Metrics, Snapshot
from pht_station_api.servers import check_metrics_settings
from pht_station_api.settings import Settings

SCRAPE_TOKEN = "channels-scrape-token"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("channels-metrics")
    state = root / "state"
    state.mkdir()
    (root / "operator-token").write_text(OPERATOR_TOKEN)
    (root / "scrape-token").write_text(SCRAPE_TOKEN)
    ports = {"internal": _port(), "external": _port(), "metrics": _port()}
    env = {
        **os.environ,
        "PHT_API_IDENTITY_MODE": "local",
        "PHT_API_LOCAL_IDENTITIES_FILE": str(identities_file(state)),
        "PHT_API_QUERY_WORKERS": "1",
        "PHT_API_METRICS_SNAPSHOT_SECONDS": "3600",
    }
    command = [
        sys.executable, "-m", "pht_cli.main", "api",
        "--store", str(make_store(root / "store", patients=5)), "--state-dir", str(state),
        "--host", "127.0.0.1", "--operator-token-file", str(root / "operator-token"),
        "--internal-port", str(ports["internal"]), "--external-port", str(ports["external"]),
        "--metrics-port", str(ports["metrics"]),
        "--metrics-token-file", str(root / "scrape-token"),
    ]  # fmt: skip
    with (root / "api.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "api.log").read_text()
            try:
                if httpx.get(urls["external"] + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=20)


def _scrape(urls: dict[str, str]) -> httpx.Response:
    return httpx.get(urls["metrics"] + "/metrics", headers=bearer(SCRAPE_TOKEN), timeout=5)


def test_public_and_train_listeners_serve_no_metrics(api: dict[str, str]) -> None:
    for listener in ("external", "internal"):
        answer = httpx.get(api[listener] + "/metrics", timeout=5)
        assert answer.status_code == 404, listener
        assert "pht_" not in answer.text


def test_metrics_listener_wants_the_scrape_token(api: dict[str, str]) -> None:
    for headers in ({}, bearer("guess"), bearer(OPERATOR_TOKEN)):
        answer = httpx.get(api["metrics"] + "/metrics", headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["reason"] == "Unauthenticated"
        assert "pht_" not in answer.text
    assert _scrape(api).status_code == 200


def test_a_burst_of_failing_requests_does_not_show_within_the_tick(api: dict[str, str]) -> None:
    """The covert sender's move (N refused requests now) is invisible until the tick ends."""
    token = "channels-metrics-train"
    reg = registration(token, ["SELECT ?s WHERE { ?s ?p ?o } LIMIT 1"])
    httpx.put(
        api["internal"] + TRAIN_REGISTRATION_PATH.format(uid=reg.uid),
        json=reg.wire(),
        headers=bearer(OPERATOR_TOKEN),
        timeout=10,
    ).raise_for_status()
    before = _scrape(api).text
    for _ in range(40):  # bounded: 40 refused requests to localhost
        refused = httpx.post(
            api["internal"] + SPARQL_PATH, data={"query": "CLEAR ALL"}, headers=bearer(token)
        )
        assert refused.status_code == 403
        httpx.get(api["external"] + "/no-such-page", timeout=5)
    after = _scrape(api).text
    assert after == before
    assert "pht_api_requests" not in after


def test_a_metrics_port_without_a_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        check_metrics_settings(Settings(metrics_port=9090, store=Path("x")))


def test_the_snapshot_moves_only_at_tick_boundaries() -> None:
    now = [1000.0]
    metrics = Metrics("s")
    snapshot = Snapshot(metrics.registry, 60, lambda: now[0])
    first = snapshot.exposition()
    for step in range(1, 60):
        metrics.query_refused()
        now[0] = 1000.0 + step * 0.333
        assert snapshot.exposition() == first
    now[0] = 1020.0
    assert snapshot.exposition() != first
    assert b'outcome="refused"' in snapshot.exposition()
