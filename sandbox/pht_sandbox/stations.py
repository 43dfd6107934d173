"""One station in a box: emulated cluster, real operator, real station API, process kubelet.

Started on 127.0.0.1 only. The emulated Kubernetes API and the kubelet that runs Job pods as
local processes (:mod:`pht_sandbox.processpods`) run in this process; the station API
(``pht api``) and the operator (``pht operator``) run as their own processes, exactly as they
are started on a cluster, configured only through their documented environment variables.
Everything lives under one work directory, which the station owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from pht_contract import constants
from pht_contract.conditions import TERMINAL_SUMMARIES
from pht_contract.objects import Obj
from pht_sandbox.controlplane.processes import free_port
from pht_sandbox.emulator import NAMESPACES, ClusterEmulator, write_kubeconfig
from pht_sandbox.emulator.kubectl import KubectlCluster
from pht_sandbox.processpods import ProcessKubelet
from pht_station_api.cohorts import patient_lines
from pht_station_api.console.locallogin import hash_password
from pht_station_api.triplestores.loading import load_rdf

REQUEST_NAMESPACE: Final = "pht-requests"
RUN_NAMESPACE: Final = "pht-runs"
GRAPH: Final = "urn:pht:graph:lung1"
STEWARD: Final = "steward@station.local"
RESEARCHER: Final = "researcher@station.local"
STARTUP_TIMEOUT: Final = 60.0


#: Written into every work directory a station in a box creates; only such folders are reset.
WORK_DIR_MARKER: Final = ".pht-station-in-a-box"


class WorkDirInUse(RuntimeError):
    """The work directory holds files the station in a box did not create."""


def fresh_work_dir(path: Path) -> Path:
    """Empty ``path`` for a new run, refusing to delete any folder the demo did not create."""
    path = path.resolve()
    if path.exists() and any(path.iterdir()):
        if not (path / WORK_DIR_MARKER).exists():
            raise WorkDirInUse(
                f"{path} is not empty and was not created by the station in a box; "
                "choose another --work-dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / WORK_DIR_MARKER).write_text("created by pht demo; deleted on the next run\n")
    return path


@dataclass
class StationConfig:
    name: str
    work_dir: Path
    patients: int = 422
    seed: int = 7
    hospital: int = 1
    policy_file: Path | None = None
    #: The named graph the synthetic cohort is loaded into.
    graph: str = GRAPH


@dataclass
class StationUrls:
    kubernetes: str = ""
    internal: str = ""
    external: str = ""
    operator_metrics: str = ""
    kubeconfig: Path = Path()


@dataclass
class LocalStation:
    """Start with ``async with LocalStation(config) as station``."""

    config: StationConfig
    urls: StationUrls = field(default_factory=StationUrls)
    steward_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    researcher_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: The steward's password for the console's local login (a new one for every station).
    steward_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    cluster: ClusterEmulator = field(default_factory=KubectlCluster)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _kubelet: ProcessKubelet | None = None
    _http: httpx.AsyncClient | None = None
    #: The address the station API's internal listener (the one train pods call) binds.
    internal_host: str = "127.0.0.1"

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> LocalStation:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _start(self) -> None:
        work = self.config.work_dir = self.config.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        store = work / "store"
        if not store.exists():
            await asyncio.to_thread(self._load_cohort, store)
        self.urls.kubernetes = await self._stack.enter_async_context(self.cluster.serving())
        for namespace in (REQUEST_NAMESPACE, RUN_NAMESPACE):
            await self.cluster.create_object(NAMESPACES, {"metadata": {"name": namespace}})
        self.urls.kubeconfig = write_kubeconfig(
            work / "kubeconfig", self.urls.kubernetes, REQUEST_NAMESPACE
        )
        self._kubelet = ProcessKubelet(self.cluster, RUN_NAMESPACE, work)
        internal, health, metrics = self._start_station_api(work, store)
        self._spawn(
            "operator",
            {
                "KUBECONFIG": str(self.urls.kubeconfig),
                "PHT_OPERATOR_STATION_NAMESPACES": REQUEST_NAMESPACE,
                "PHT_OPERATOR_RUN_NAMESPACE": RUN_NAMESPACE,
                "PHT_OPERATOR_STATION_API_URL": self.urls.internal,
                "PHT_OPERATOR_RUN_API_URL": self.urls.internal,
                "PHT_OPERATOR_RUN_API_PORT": str(internal),
                "PHT_OPERATOR_API_TOKEN_FILE": str(work / "operator-token"),
                "PHT_OPERATOR_STATION_NAME": self.config.name,
                "PHT_OPERATOR_LISTEN_HOST": "127.0.0.1",
                "PHT_OPERATOR_HEALTH_PORT": str(health),
                "PHT_OPERATOR_METRICS_PORT": str(metrics),
                "PHT_OPERATOR_POLL_INTERVAL_SECONDS": "0.5",
            },
            args=["--kubeconfig", str(self.urls.kubeconfig)],
        )
        self._http = httpx.AsyncClient(timeout=10.0)
        await self._wait_ready(f"{self.urls.external}/readyz", "station API")
        await self._wait_ready(f"http://127.0.0.1:{health}/healthz", "operator")

    def _load_cohort(self, store: Path) -> None:
        cohort = self.config.work_dir / "cohort.nq"
        with cohort.open("w", encoding="utf-8") as handle:
            for chunk in patient_lines(
                self.config.patients, self.config.seed, self.config.hospital, self.config.graph
            ):
                handle.write(chunk)
        with cohort.open("rb") as source:
            load_rdf(store, source, "nquads", self.config.graph)

    def _start_station_api(self, work: Path, store: Path) -> tuple[int, int, int]:
        """Start the station API on loopback ports with a fresh operator credential; return the
        internal port and the ports left for the operator's health and metrics endpoints."""
        operator_token = secrets.token_urlsafe(32)
        (work / "operator-token").write_text(operator_token)
        (work / "operator-token").chmod(0o600)
        internal, external = free_port(), free_port()
        health, metrics = free_port(), free_port()
        self.urls.internal = f"http://{self.internal_host}:{internal}"
        self.urls.external = f"http://127.0.0.1:{external}"
        self.urls.operator_metrics = f"http://127.0.0.1:{metrics}/metrics"
        self._write_identities(work / "identities.yaml")
        self._write_console_logins(work / "console-logins.yaml")
        self._spawn(
            "api",
            {
                "PHT_API_STORE": str(store),
                "PHT_API_STATE_DIR": str(work / "api-state"),
                "PHT_API_INTERNAL_HOST": self.internal_host,
                "PHT_API_INTERNAL_PORT": str(internal),
                "PHT_API_EXTERNAL_HOST": "127.0.0.1",
                "PHT_API_EXTERNAL_PORT": str(external),
                "PHT_API_OPERATOR_TOKEN_FILE": str(work / "operator-token"),
                "PHT_API_IDENTITY_MODE": "local",
                "PHT_API_LOCAL_IDENTITIES_FILE": str(work / "identities.yaml"),
                "PHT_API_STATION_NAME": self.config.name,
                "PHT_API_PUBLIC_BASE_URL": self.urls.external,
                # The console acts on the cluster with the signed-in steward's token.
                "PHT_API_KUBECONFIG": str(self.urls.kubeconfig),
                "PHT_API_CONSOLE_NAMESPACES": REQUEST_NAMESPACE,
                "PHT_API_CONSOLE_LOCAL_LOGIN_FILE": str(work / "console-logins.yaml"),
                **(
                    {"PHT_API_POLICY_FILE": str(self.config.policy_file)}
                    if self.config.policy_file
                    else {}
                ),
            },
        )
        return internal, health, metrics

    def _write_identities(self, path: Path) -> None:
        def digest(token: str) -> str:
            return hashlib.sha256(token.encode()).hexdigest()

        document = {
            "users": [
                # The steward's token in plain too: the console's local login signs in with it.
                {
                    "username": STEWARD,
                    "groups": ["pht-stewards"],
                    "tokenSha256": digest(self.steward_token),
                    "token": self.steward_token,
                },
                {
                    "username": RESEARCHER,
                    "groups": ["pht-researchers"],
                    "tokenSha256": digest(self.researcher_token),
                },
            ],
            "rules": [
                {
                    "groups": ["pht-stewards"],
                    "verbs": ["release", "block", "approve", "get"],
                    "namespaces": ["*"],
                },
                {
                    "groups": ["pht-researchers"],
                    "verbs": ["get"],
                    "namespaces": [REQUEST_NAMESPACE],
                },
            ],
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)

    def _write_console_logins(self, path: Path) -> None:
        """The console's local login: the steward's password, as a scrypt hash."""
        document = {
            "users": [{"username": STEWARD, "scrypt": hash_password(self.steward_password)}]
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)

    @property
    def console_user(self) -> str:
        """Who signs in to the console's local login (the steward)."""
        return STEWARD

    @property
    def console_url(self) -> str:
        return f"{self.urls.external}/console/"

    def _spawn(self, command: str, env: dict[str, str], args: list[str] | None = None) -> None:
        log = (self.config.work_dir / f"{command}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "pht_cli.main", command, *(args or [])],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append(process)

    async def _wait_ready(self, url: str, what: str) -> None:
        assert self._http is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{what} exited early (code {process.returncode}); see the logs in "
                        f"{self.config.work_dir}"
                    )
            with contextlib.suppress(httpx.HTTPError):
                if (await self._http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{what} did not become ready within {STARTUP_TIMEOUT:.0f}s")

    async def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        self._processes.clear()
        if self._kubelet is not None:
            await self._kubelet.stop()
            self._kubelet = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        with contextlib.suppress(Exception):
            await self.cluster.close_watches()
        await self._stack.aclose()

    # -- what users do --------------------------------------------------------------------------

    async def kube_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the Kubernetes API (the emulator knows no users)."""
        return await self.http.request(method, f"{self.urls.kubernetes}{path}", **kwargs)

    @property
    def requester(self) -> str:
        """Who creates Trains here (the emulator counts every request as this user)."""
        return RESEARCHER

    @property
    def requester_kubeconfig(self) -> Path:
        return self.urls.kubeconfig

    @property
    def approver(self) -> str:
        """Who approves Trains in this station (the steward's name)."""
        return STEWARD

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None, "the station is not running"
        return self._http

    def _url(self, api_version: str, plural: str, namespace: str, name: str = "") -> str:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        url = f"{self.urls.kubernetes}{prefix}/namespaces/{namespace}/{plural}"
        return f"{url}/{name}" if name else url

    async def apply(self, obj: Obj, plural: str) -> Obj:
        """Create an object through the Kubernetes API, as ``kubectl apply`` would."""
        namespace = obj["metadata"].get("namespace", REQUEST_NAMESPACE)
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        response = await self.http.post(self._url(obj["apiVersion"], plural, namespace), json=obj)
        if response.status_code >= 400:
            raise RuntimeError(
                f"creating {obj['kind']}: HTTP {response.status_code} {response.text}"
            )
        result: Obj = response.json()
        return result

    async def get_train(self, name: str, namespace: str = REQUEST_NAMESPACE) -> Obj:
        response = await self.http.get(
            self._url(constants.GROUP_VERSION, constants.TRAIN_PLURAL, namespace, name)
        )
        response.raise_for_status()
        result: Obj = response.json()
        return result

    async def approve(self, train: Obj, approver: str = STEWARD) -> str:
        """Approve as a data steward with the real ``pht approve`` (bound to the spec hash)."""
        meta = train["metadata"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pht_cli.main",
            "approve",
            meta["name"],
            "--namespace",
            meta["namespace"],
            "--approver",
            approver,
            "--comment",
            "Reviewed image, queries and purpose (station in a box).",
            "--kubeconfig",
            str(self.urls.kubeconfig),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"pht approve failed: {output.decode(errors='replace')}")
        return output.decode(errors="replace").strip()

    async def wait_for(
        self, name: str, predicate: Any, timeout: float, on_change: Any = None
    ) -> Obj:
        """Poll the Train until ``predicate(train)`` or a terminal summary; report changes."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            train = await self.get_train(name)
            status = train.get("status") or {}
            view = (
                status.get("summary"),
                tuple((c["type"], c["status"], c["reason"]) for c in status.get("conditions", [])),
                (status.get("progress") or {}).get("percent"),
                (status.get("progress") or {}).get("stage"),
            )
            if view != last and on_change is not None:
                on_change(train)
            last = view
            if predicate(train) or status.get("summary") in TERMINAL_SUMMARIES:
                return train
            if time.monotonic() > deadline:
                raise TimeoutError(f"Train {name} did not finish within {timeout:.0f}s")
            await asyncio.sleep(0.2)

    async def released_result(self, name: str) -> Obj:
        response = await self.http.get(
            f"{self.urls.external}/results/{REQUEST_NAMESPACE}/{name}",
            headers={"Authorization": f"Bearer {self.researcher_token}"},
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"downloading the result: HTTP {response.status_code} {response.text}"
            )
        result: Obj = response.json()
        return result
