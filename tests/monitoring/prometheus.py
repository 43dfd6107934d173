"""A real Prometheus server (Debian's ``prometheus`` binary) on 127.0.0.1 for the tests.

It scrapes the given targets every second and evaluates the given rules every second, so that a
scenario of a minute shows up as sixty samples, and it answers PromQL over its HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from pht_sandbox.controlplane.processes import free_port

SCRAPE_SECONDS = 1
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """One scrape job: ``host:port``, the labels a ServiceMonitor would give it, a token."""

    job: str
    address: str
    labels: dict[str, str]
    token_file: Path | None = None

    def scrape_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "job_name": self.job,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [self.address], "labels": self.labels}],
        }
        if self.token_file is not None:
            config["authorization"] = {"type": "Bearer", "credentials_file": str(self.token_file)}
        return config


@dataclass
class Prometheus:
    binary: Path
    work_dir: Path
    targets: list[Target]
    rules_file: Path
    url: str = ""
    _process: subprocess.Popen[bytes] | None = None
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    def start(self) -> None:
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_SECONDS}s",
                "scrape_timeout": f"{SCRAPE_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_SECONDS}s",
            },
            "rule_files": [str(self.rules_file)],
            "scrape_configs": [target.scrape_config() for target in self.targets],
        }
        config_file = self.work_dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.work_dir / "prometheus.log").open("ab")
        self._process = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self._http.get(f"{self.url}/-/ready").status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready within {STARTUP_TIMEOUT:.0f}s: {self.log()}")

    def log(self) -> str:
        return (self.work_dir / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._http.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self._http.get(f"{self.url}{path}", params=params)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", response.text
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) of ``expr`` now."""
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] in {"scalar", "string"}:
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets_health(self) -> dict[str, str]:
        data = self._get("/api/v1/targets")
        return {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def active_alerts(self) -> dict[str, str]:
        """Alert name -> state (pending or firing) of every active alert."""
        return {a["labels"]["alertname"]: a["state"] for a in self._get("/api/v1/alerts")["alerts"]}

    async def wait_for(self, expr: str, timeout: float) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns a sample; the samples (the event loop keeps running)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no data for {expr} within {timeout:.0f}s")
            await asyncio.sleep(0.5)


def has_number(result: list[dict[str, Any]]) -> bool:
    """Whether a query result holds at least one sample that is a number (not NaN)."""
    return any(not math.isnan(float(sample["value"][1])) for sample in result)
