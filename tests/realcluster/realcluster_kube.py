"""Helpers for the real-cluster tests: the real kubectl and helm against a kubeconfig, waiting."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pht_contract import constants
from pht_sandbox.controlplane.cluster import ControlPlane, kubeconfig

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"
CHART = REPO / "charts" / "pht-station"

#: The release the session's `chart` fixture installs, and its namespaces.
RELEASE = "pht"
SYSTEM_NS = "pht-system"
REQUESTS_NS = "pht-requests"
RUNS_NS = "pht-runs"
GROUP = "pht.health-ai.nl"
REQUESTED_BY = "pht.health-ai.nl/requested-by"
#: The chart's names for this release (`pht.fullname` is "<release>-<chart>").
FULLNAME = f"{RELEASE}-pht-station"
OPERATOR_ACCOUNT = f"{FULLNAME}-operator"
API_ACCOUNT = f"{FULLNAME}-api"
OPERATOR_CREDENTIAL = f"{FULLNAME}-operator-credential"
#: Static volumes for the station API's claims (no provisioner here): the real PV controller
#: binds each claim to the smallest volume that fits.
VOLUME_SIZES = ("20Gi", "10Gi", "5Gi")

#: The API server's prefix for the names and groups in the OpenID provider's ID tokens.
OIDC_PREFIX = "oidc:"
VALUES: dict[str, Any] = {
    "station": {"createNamespaces": True, "namespaces": [REQUESTS_NS]},
    "rbac": {
        "stewards": [
            {"kind": "Group", "name": "pht:stewards"},
            {"kind": "Group", "name": f"{OIDC_PREFIX}pht-stewards"},
        ],
        "researchers": [
            {"kind": "Group", "name": "pht:researchers"},
            {"kind": "Group", "name": f"{OIDC_PREFIX}pht-researchers"},
        ],
    },
}

T = TypeVar("T")


def tool(name: str) -> Path:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: run 'make tools'"
    return path


def run(
    name: str,
    args: list[str],
    kubeconfig: Path,
    timeout: float = 180,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HELM_CACHE_HOME": str(kubeconfig.parent)}
    return subprocess.run(
        [str(tool(name)), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=stdin,
        check=False,
    )


#: The chart's StationPolicy of the requests namespace.
POLICY_PATH = (
    f"/apis/{constants.GROUP_VERSION}/namespaces/{REQUESTS_NS}/stationpolicies/"
    f"{constants.STATION_POLICY_NAME}"
)


@contextmanager
def policy_spec_in_place(plane: ControlPlane, spec: dict[str, Any]) -> Iterator[None]:
    """The chart's StationPolicy holds ``spec`` meanwhile; the chart's own is put back after."""
    with plane.client() as admin:
        live = admin.get(POLICY_PATH)
        assert live.status_code == 200, live.text
        chart_spec = live.json()["spec"]
        replaced = admin.put(POLICY_PATH, json={**live.json(), "spec": spec})
        assert replaced.status_code == 200, replaced.text
    try:
        yield
    finally:
        with plane.client() as admin:
            now = admin.get(POLICY_PATH).json()
            restored = admin.put(POLICY_PATH, json={**now, "spec": chart_spec})
            assert restored.status_code == 200, restored.text


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, every: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def static_volume(name: str, size: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": f"/nonexistent/{name}"},
        },
    }


def mint_token(plane: ControlPlane, namespace: str, account: str, seconds: int = 3600) -> str:
    """A ServiceAccount token from the real TokenRequest API, as the kubelet would mount it."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }
    with plane.client("admin") as admin:
        answer = admin.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", json=request
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["status"]["token"])


def token_kubeconfig(plane: ControlPlane, token: str, user: str, path: Path) -> Path:
    """A kubeconfig that logs in with a bearer token only (no client certificate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig(plane.server, plane.ca, user, {"token": token})))
    path.chmod(0o600)
    return path


def pht(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """The real `pht` CLI as a user runs it; fails the test with its stderr on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"pht {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@dataclass
class LocalProcess:
    """A `pht` command running as its own process (own session), its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> "LocalProcess":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pht_cli.main", *self.args],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
