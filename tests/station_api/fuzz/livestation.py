"""A real ``pht api`` process on localhost ports, for end-to-end and schema-driven tests."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from stationkit import OPERATOR_TOKEN, identities_file

#: The bearer token the live station's metrics listener expects from a scraper.
METRICS_TOKEN = "metrics-scrape-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveStation:
    process: subprocess.Popen[bytes]
    internal: str
    external: str
    store: Path
    metrics: str = ""

    def stop(self) -> int:
        """SIGTERM, as Kubernetes sends it; returns the exit code."""
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=5)


def start_station(store: Path, state_dir: Path, policy: Path | None = None) -> LiveStation:
    state_dir.mkdir(parents=True, exist_ok=True)
    token_file = state_dir / "operator-token"
    token_file.write_text(OPERATOR_TOKEN)
    internal_port, external_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PHT_API_METRICS_PORT": str(metrics_port),
        "PHT_API_METRICS_TOKEN": METRICS_TOKEN,
        "PHT_API_IDENTITY_MODE": "local",
        "PHT_API_LOCAL_IDENTITIES_FILE": str(identities_file(state_dir)),
        "PHT_API_PUBLIC_BASE_URL": f"http://127.0.0.1:{external_port}",
        "PHT_API_INTERNAL_BASE_URL": f"http://127.0.0.1:{internal_port}",
        "PHT_API_QUERY_WORKERS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "pht_cli.main",
        "api",
        "--store",
        str(store),
        "--state-dir",
        str(state_dir),
        "--host",
        "127.0.0.1",
        "--internal-port",
        str(internal_port),
        "--external-port",
        str(external_port),
        "--operator-token-file",
        str(token_file),
        "--station-name",
        "live-station",
    ]
    if policy is not None:
        command += ["--policy", str(policy)]
    with (state_dir / "pht-api.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    station = LiveStation(
        process,
        f"http://127.0.0.1:{internal_port}",
        f"http://127.0.0.1:{external_port}",
        store,
        f"http://127.0.0.1:{metrics_port}",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pht api exited with {process.returncode}")
        try:
            ready = [
                httpx.get(base + "/readyz", timeout=1).status_code
                for base in (station.internal, station.external)
            ]
            if ready == [200, 200]:
                return station
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    station.stop()
    raise RuntimeError("pht api did not become ready")
