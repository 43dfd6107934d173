"""The station in a box watched by a real Prometheus that loads the chart's alert rules.

One station (real operator and station API processes, emulated Kubernetes API, process
kubelet) runs the Kaplan–Meier Train once per module; Prometheus scrapes both metrics ports
the way the chart's ServiceMonitor does (the station API's with its bearer token) and evaluates
the rules rendered by ``helm template``. Bounded: the station starts in seconds, the Train runs
in under a minute, Prometheus scrapes and evaluates every second.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from chart.rendering import documents, helm_template, one, tool

from pht_contract import constants
from pht_sandbox.controlplane.processes import free_port
from pht_sandbox.demo import POLICY_FILE, TRAIN_FILE, run_one_train
from pht_sandbox.stations import LocalStation, StationConfig

from .prometheus import Prometheus, Target

STATION = "watched"
NAMESPACE = "pht-system"
RELEASE = "station"
#: The Service names the chart gives the two metrics endpoints (the ServiceMonitor's `service`).
OPERATOR_SERVICE = f"{RELEASE}-pht-station-operator-metrics"
API_SERVICE = f"{RELEASE}-pht-station-api-metrics"
#: Short enough that an alert becomes firing within the test; the chart's real durations are
#: unit-tested by promtool (tests/chart/alerts.test.yaml).
TEST_FOR = "2s"


def chart_alert_rules() -> dict[str, Any]:
    """The PrometheusRule groups the chart renders, as a plain rules file.

    The expressions, labels and annotations are the chart's, unchanged; only each ``for``
    (minutes to a day in the chart) is cut to :data:`TEST_FOR`.
    """
    result = helm_template(
        sets={"metrics.prometheusRule.enabled": "true"}, namespace=NAMESPACE, release=RELEASE
    )
    assert result.returncode == 0, result.stderr
    groups: list[dict[str, Any]] = one(documents(result.stdout), "PrometheusRule")["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = TEST_FOR
    return {"groups": groups}


@dataclass
class WatchedStation(LocalStation):
    """The station in a box with the station API's metrics listener on, behind a token."""

    api_metrics_port: int = field(default_factory=free_port)
    metrics_token_file: Path = Path()
    processes_by_command: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _spawn(self, command: str, env: dict[str, str], args: list[str] | None = None) -> None:
        if command == "api":
            self.metrics_token_file = self.config.work_dir / "metrics-token"
            self.metrics_token_file.write_text(secrets.token_urlsafe(32))
            self.metrics_token_file.chmod(0o600)
            env = {
                **env,
                "PHT_API_METRICS_HOST": "127.0.0.1",
                "PHT_API_METRICS_PORT": str(self.api_metrics_port),
                "PHT_API_METRICS_TOKEN_FILE": str(self.metrics_token_file),
                "PHT_API_METRICS_SNAPSHOT_SECONDS": "1",
            }
        super()._spawn(command, env, args)
        self.processes_by_command[command] = self._processes[-1]

    @property
    def operator_metrics_address(self) -> str:
        return self.urls.operator_metrics.removeprefix("http://").removesuffix("/metrics")

    @property
    def api_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.api_metrics_port}/metrics"

    async def stop_operator(self) -> None:
        process = self.processes_by_command["operator"]
        process.terminate()
        await asyncio.to_thread(process.wait, 15)


@dataclass
class Scenario:
    station: WatchedStation
    prometheus: Prometheus
    #: The Trains that ran: the Kaplan–Meier one (released), then one whose image is missing.
    trains: list[dict[str, Any]]
    #: When Prometheus started (time.monotonic()): dashboards look at the window since then.
    started: float

    def window(self) -> str:
        """A PromQL range covering the whole scenario so far, e.g. ``73s``."""
        return f"{math.ceil(time.monotonic() - self.started) + 2}s"


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def unpullable_train() -> dict[str, Any]:
    """The Kaplan–Meier Train with an image the station cannot pull: it fails after approval."""
    train = _load(TRAIN_FILE)
    train["metadata"]["name"] = "km-image-missing"
    train["spec"]["image"] = "ghcr.io/pht-station/trains/not-bundled:1@sha256:" + "c" * 64
    return train


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    work = tmp_path_factory.mktemp("watched")
    rules_file = work / "pht-station.rules.yaml"
    rules_file.write_text(yaml.safe_dump(chart_alert_rules()))
    config = StationConfig(STATION, work / "station", patients=120, policy_file=POLICY_FILE)
    station = WatchedStation(config)
    async with station:
        prometheus = Prometheus(
            binary=tool("prometheus"),
            work_dir=work,
            rules_file=rules_file,
            targets=[
                Target(
                    "operator",
                    station.operator_metrics_address,
                    {"namespace": NAMESPACE, "service": OPERATOR_SERVICE},
                ),
                Target(
                    "station-api",
                    f"127.0.0.1:{station.api_metrics_port}",
                    {"namespace": NAMESPACE, "service": API_SERVICE},
                    token_file=station.metrics_token_file,
                ),
            ],
        )
        prometheus.start()
        try:
            started = time.monotonic()
            await prometheus.wait_for('up{job="operator"} == 1', 20)
            await prometheus.wait_for('up{job="station-api"} == 1', 20)
            await station.apply(_load(POLICY_FILE), constants.POLICY_PLURAL)
            train = await run_one_train(station, _load(TRAIN_FILE), say=lambda _line: None)
            failing = await run_one_train(station, unpullable_train(), say=lambda _line: None)
            # The last changes reach Prometheus on its next scrapes (the station API's
            # exposition is a snapshot per one-second tick).
            for summary in ("Succeeded", "Failed"):
                await prometheus.wait_for(
                    f'pht_trains{{station="{STATION}", summary="{summary}"}} == 1', 20
                )
            await prometheus.wait_for(f'pht_uploads_total{{station="{STATION}"}} >= 1', 20)
            await asyncio.sleep(3)
            yield Scenario(station, prometheus, [train, failing], started)
        finally:
            prometheus.stop()
