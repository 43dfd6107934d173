"""The rendered station API, run for real: the init container's command, the container's
environment and the `helm test` script are taken from the rendered chart, paths moved under a
temporary directory and ports to free local ones, then run against a real `pht api` process.
This is as close to `helm install && helm test` as a machine without a cluster gets."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .rendering import NAMESPACE, RELEASE, documents, one, render_profile

PHT = Path(sys.executable).with_name("pht")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _relocated(text: str, root: Path) -> str:
    return text.replace("/var/lib/pht/", f"{root}/var/lib/pht/").replace(
        "/var/run/pht/", f"{root}/var/run/pht/"
    )


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pht api exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not become healthy in {timeout} s")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_rendered_station_api_starts_and_passes_the_helm_test(tmp_path: Path) -> None:
    docs = documents(render_profile("default"))
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (container,) = pod["containers"]
    for volume in ("store", "audit", "state"):
        (tmp_path / f"var/lib/pht/{volume}").mkdir(parents=True)
    credential = tmp_path / "var/run/pht/operator-credential"
    credential.mkdir(parents=True)
    (credential / "token").write_text("operator-test-credential\n")
    scrape = tmp_path / "var/run/pht/metrics-token"
    scrape.mkdir(parents=True)
    (scrape / "token").write_text("metrics-test-token\n")

    # The init container: creates an empty store on a new volume, and is a no-op the second time.
    script = _relocated(init["args"][0], tmp_path)
    for expected in ("created an empty data store", ""):
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected

    internal, external, metrics = _free_port(), _free_port(), _free_port()
    env: dict[str, Any] = {e["name"]: _relocated(e["value"], tmp_path) for e in container["env"]}
    env |= {
        "PHT_API_METRICS_PORT": str(metrics),
        "PHT_API_METRICS_HOST": "127.0.0.1",
        "PHT_API_INTERNAL_PORT": str(internal),
        "PHT_API_EXTERNAL_PORT": str(external),
        "PHT_API_INTERNAL_HOST": "127.0.0.1",
        "PHT_API_EXTERNAL_HOST": "127.0.0.1",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PATH": os.environ["PATH"],
    }
    process = subprocess.Popen(
        [str(PHT), *container["args"]],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{external}/healthz", process)
        test_pod = one(docs, "Pod")["spec"]["containers"][0]
        assert test_pod["command"] == ["python", "-c"]
        service = f"http://{RELEASE}-pht-station-api.{NAMESPACE}.svc:8080"
        check = test_pod["args"][0]
        assert service in check
        check = check.replace(service, f"http://127.0.0.1:{external}")
        result = subprocess.run(
            [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "FAIR Data Point answers with Turtle" in result.stdout
        # /metrics: not on the external port; on the metrics port only with the mounted token
        assert httpx.get(f"http://127.0.0.1:{external}/metrics").status_code == 404
        scrape_url = f"http://127.0.0.1:{metrics}/metrics"
        assert httpx.get(scrape_url).status_code == 401
        scraped = httpx.get(scrape_url, headers={"Authorization": "Bearer metrics-test-token"})
        assert scraped.status_code == 200 and "pht_gateway_queries_total" in scraped.text
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
