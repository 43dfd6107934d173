"""The health and metrics endpoints listen where PHT_OPERATOR_LISTEN_HOST says."""

from __future__ import annotations

import socket
import urllib.request

import httpx
import pytest

from pht_operator.liveness import HealthServer, Liveness
from pht_operator.metrics import OperatorMetrics
from pht_operator.settings import OperatorSettings


def _reachable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def _other_local_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHT_OPERATOR_LISTEN_HOST", "127.0.0.1")
    monkeypatch.setenv("PHT_OPERATOR_STATION_API_NAMESPACE", "pht-station")
    assert OperatorSettings().listen_host == "127.0.0.1"
    monkeypatch.delenv("PHT_OPERATOR_LISTEN_HOST")
    assert OperatorSettings().listen_host == "0.0.0.0"


async def test_health_listens_on_loopback_only_when_told() -> None:
    metrics = OperatorMetrics("test-station")
    server = HealthServer(Liveness(metrics, stall_after=60.0))
    port = await server.start(0, "127.0.0.1")
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        other = _other_local_address()
        if other is not None:
            assert not _reachable(other, port)
    finally:
        await server.stop()


def test_metrics_listen_on_loopback_only_when_told() -> None:
    metrics = OperatorMetrics("test-station")
    port = metrics.serve(0, "127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert b"pht_operator_up" in answer.read()
    other = _other_local_address()
    if other is not None:
        assert not _reachable(other, port)
