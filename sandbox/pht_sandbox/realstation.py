"""One station on a real control plane: real API server, Job controller and scheduler, the
chart's CRDs, admission policies and RBAC, the real operator, the real station API and a node
agent that runs train pods.

Everything listens on 127.0.0.1 and lives under one work directory. The control plane
(:mod:`pht_sandbox.controlplane`) is started from the binaries ``make tools`` builds; the chart
is installed with the real ``helm`` as a cluster admin would; the operator runs as a process
with the chart's operator ServiceAccount token, so it may do only what the chart grants. A
researcher (``alice``) applies Trains, a steward (``bob``) approves them with ``pht approve``;
each has a kubeconfig of their own. The kwok nodes are cordoned once the chart is installed, so
train pods land on the node agent's node, which runs them (:mod:`pht_sandbox.nodeagent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.controlplane.binaries import ControlPlaneBinaries, locate, repository_root
from pht_sandbox.controlplane.cluster import IDENTITIES, ControlPlane, kubeconfig
from pht_sandbox.controlplane.nodes import NODES
from pht_sandbox.controlplane.processes import ControlPlaneError
from pht_sandbox.nodeagent import LEASE_NAMESPACE, NodeAgent, choose_runtime, machine_capacity
from pht_sandbox.podnetwork import ensure_listener_address
from pht_sandbox.runcruntime import RuncRuntime
from pht_sandbox.stations import REQUEST_NAMESPACE, RUN_NAMESPACE, LocalStation

RELEASE: Final = "pht"
SYSTEM_NAMESPACE: Final = "pht-system"
OPERATOR_ACCOUNT: Final = f"{RELEASE}-pht-station-operator"
NODE_NAME: Final = "station-node-0"
REQUESTED_BY: Final = constants.ANNOTATION_REQUESTED_BY
RESEARCHER_USER: Final = IDENTITIES["researcher"].user
STEWARD_USER: Final = IDENTITIES["steward"].user
#: Seconds a kind the chart just installed may answer 503 before the API server serves it.
NEW_KIND_SECONDS: Final = 30.0
#: The chart's values: the station's namespaces, and who is a steward or a researcher.
CHART_VALUES: Final[Obj] = {
    "station": {"createNamespaces": True, "namespaces": [REQUEST_NAMESPACE]},
    "runNamespace": {"name": RUN_NAMESPACE},
    "rbac": {
        "stewards": [{"kind": "Group", "name": "pht:stewards"}],
        "researchers": [{"kind": "Group", "name": "pht:researchers"}],
    },
}
#: The operator's Deployment settings that only make sense inside its pod.
IN_POD_ONLY: Final = frozenset(
    {
        "PHT_OPERATOR_STATION_API_URL",
        "PHT_OPERATOR_RUN_API_URL",
        "PHT_OPERATOR_RUN_API_PORT",
        "PHT_OPERATOR_API_TOKEN_FILE",
        "PHT_OPERATOR_HEALTH_PORT",
        "PHT_OPERATOR_METRICS_PORT",
        "HOME",
        "TMPDIR",
    }
)
HELM_TIMEOUT: Final = 300.0
#: Unpacked image root file systems, one per image digest, shared by every station here.
ROOTFS_CACHE: Final = Path(
    os.environ.get("PHT_ROOTFS_CACHE", Path.home() / ".cache" / "pht-images" / "rootfs-runc")
)


def default_images_dir() -> Path:
    """Where ``make images`` puts the image archives (``PHT_IMAGES_OUT`` moves them)."""
    if os.environ.get("PHT_IMAGES_OUT"):
        return Path(os.environ["PHT_IMAGES_OUT"])
    root = repository_root()
    return (root or Path.cwd()) / ".tools" / "images"


def require_runtime(choice: str) -> None:
    """Raise :class:`~pht_sandbox.nodeagent.RuntimeUnavailable` with the reason when the pod
    runtime asked for cannot work here, before anything starts (``auto`` always can)."""
    if choice != "auto":
        choose_runtime(choice, default_images_dir(), ROOTFS_CACHE, lambda _line: None)


def control_plane_binaries() -> ControlPlaneBinaries:
    """The built control plane; ControlPlaneError with one line saying how to build it."""
    try:
        return locate(build=False)
    except ControlPlaneError as exc:
        raise ControlPlaneError(
            "the real control plane is not built: run 'make tools' first "
            f"(it builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok "
            f"from pinned sources; needs Go). {str(exc).splitlines()[0][:200]}"
        ) from exc


def helm_binary() -> Path:
    found = shutil.which("helm")
    root = repository_root()
    local = root / ".tools" / "bin" / "helm" if root is not None else None
    if local is not None and local.exists():
        return local
    if found:
        return Path(found)
    raise ControlPlaneError("helm is missing: run 'make tools' first")


@dataclass
class RealStation(LocalStation):
    """A :class:`LocalStation` whose cluster is a real control plane: same story, same calls."""

    #: A running control plane with the chart installed to use (default: start one, install
    #: the chart, and stop it at the end).
    plane: ControlPlane | None = None
    agent: NodeAgent | None = None
    #: How the node agent runs train pods: ``auto`` (runc where this machine allows it, else
    #: local processes, said loudly), ``runc`` or ``process``.
    pod_runtime: str = "auto"
    #: The image archives the runc runtime runs (default: ``.tools/images``, ``make images``).
    images_dir: Path | None = None
    _owns_plane: bool = False
    say: Any = print
    _kube: httpx.AsyncClient | None = None
    _agent_api: httpx.AsyncClient | None = None

    @property
    def approver(self) -> str:
        return STEWARD_USER

    async def _start(self) -> None:
        work = self.config.work_dir = self.config.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        store = work / "store"
        if not store.exists():
            await asyncio.to_thread(self._load_cohort, store)
        if self.plane is None:
            self.plane = ControlPlane(work / "control-plane", control_plane_binaries())
            self._owns_plane = True
            await asyncio.to_thread(self.plane.start)
        self.urls.kubernetes = self.plane.server
        self.urls.kubeconfig = self.plane.kubeconfigs["researcher"]
        self._kube = self._client("admin")
        if self._owns_plane:
            await asyncio.to_thread(self._install_chart, work)
        await self._cordon_simulated_nodes(True)
        self._agent_api = self._client("admin")
        runtime, runtime_name = await asyncio.to_thread(
            choose_runtime, self.pod_runtime, self._images_dir(), ROOTFS_CACHE, self.say
        )
        if isinstance(runtime, RuncRuntime):
            # Pods reach only this address, in their own network namespaces.
            await asyncio.to_thread(ensure_listener_address, runtime.api_address)
            self.internal_host = runtime.api_address
        self.agent = NodeAgent(
            self._agent_api,
            NODE_NAME,
            work / "node",
            runtime=runtime,
            runtime_name=runtime_name,
            capacity=machine_capacity(),
            say=self.say,
        )
        await self.agent.start()
        await self._wait_schedulable(NODE_NAME)

        internal, health, metrics = self._start_station_api(work, store)
        if isinstance(runtime, RuncRuntime):
            runtime.api_port = internal
        operator_kubeconfig = await self._operator_kubeconfig(work / "operator.kubeconfig")
        self._spawn(
            "operator",
            {
                **await self._chart_operator_env(),
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
            args=["--kubeconfig", str(operator_kubeconfig)],
        )
        self._http = httpx.AsyncClient(timeout=10.0)
        await self._wait_ready(f"{self.urls.external}/readyz", "station API")
        await self._wait_ready(f"http://127.0.0.1:{health}/healthz", "operator")

    def _images_dir(self) -> Path:
        return self.images_dir if self.images_dir is not None else default_images_dir()

    def _client(self, identity: str) -> httpx.AsyncClient:
        assert self.plane is not None
        paths = yaml.safe_load(self.plane.kubeconfigs[identity].read_text())["users"][0]["user"]
        context = ssl.create_default_context(cafile=str(self.plane.ca))
        context.load_cert_chain(paths["client-certificate"], paths["client-key"])
        return httpx.AsyncClient(base_url=self.plane.server, verify=context, timeout=30.0)

    @property
    def kube(self) -> httpx.AsyncClient:
        assert self._kube is not None, "the station is not running"
        return self._kube

    def chart_values(self) -> Obj:
        """The values this station installs the chart with."""
        return CHART_VALUES

    def _install_chart(self, work: Path) -> None:
        assert self.plane is not None
        root = repository_root()
        if root is None:
            raise ControlPlaneError("the chart is installed from a source checkout")
        values = work / "chart-values.yaml"
        values.write_text(yaml.safe_dump(self.chart_values()))
        done = subprocess.run(
            [
                str(helm_binary()),
                "install",
                RELEASE,
                str(root / "charts" / "pht-station"),
                "-n",
                SYSTEM_NAMESPACE,
                "--create-namespace",
                "-f",
                str(values),
            ],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT,
            env={
                **os.environ,
                "KUBECONFIG": str(self.plane.kubeconfigs["admin"]),
                "HELM_CACHE_HOME": str(work / "helm-cache"),
                "HELM_CONFIG_HOME": str(work / "helm-config"),
                "HELM_DATA_HOME": str(work / "helm-data"),
            },
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"helm install failed: {done.stderr.strip()[-1500:]}")

    async def _cordon_simulated_nodes(self, cordon: bool) -> None:
        """kwok's nodes run nothing: only the node agent's node takes new pods."""
        for node in NODES:
            answer = await self.kube.patch(
                f"/api/v1/nodes/{node.name}",
                content=json.dumps({"spec": {"unschedulable": cordon or None}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"cordoning node {node.name}: HTTP {answer.status_code}")

    async def _wait_schedulable(self, name: str, timeout: float = 60.0) -> None:
        """Until the node lifecycle controller has lifted the not-ready taints."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            node = (await self.kube.get(f"/api/v1/nodes/{name}")).json()
            taints = (node.get("spec") or {}).get("taints") or []
            if not any(t.get("effect") == "NoSchedule" for t in taints):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"node {name} still tainted after {timeout:.0f}s: {taints}")
            await asyncio.sleep(0.5)

    async def _chart_operator_env(self) -> dict[str, str]:
        """The operator's environment as the chart's Deployment sets it, less in-pod paths."""
        answer = await self.kube.get(
            f"/apis/apps/v1/namespaces/{SYSTEM_NAMESPACE}/deployments/{OPERATOR_ACCOUNT}"
        )
        answer.raise_for_status()
        (container,) = answer.json()["spec"]["template"]["spec"]["containers"]
        return {
            e["name"]: e["value"]
            for e in container.get("env", [])
            if "value" in e and e["name"] not in IN_POD_ONLY
        }

    async def _operator_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig with the chart's operator ServiceAccount token (TokenRequest API)."""
        assert self.plane is not None
        answer = await self.kube.post(
            f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts/{OPERATOR_ACCOUNT}/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 24 * 3600},
            },
        )
        if answer.status_code != 201:
            raise RuntimeError(f"operator token: HTTP {answer.status_code} {answer.text[:300]}")
        token = answer.json()["status"]["token"]
        document = kubeconfig(self.plane.server, self.plane.ca, OPERATOR_ACCOUNT, {"token": token})
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    async def stop(self) -> None:
        await super().stop()
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None
        if self.plane is not None and not self._owns_plane and self._kube is not None:
            # A control plane we borrowed goes back as we found it: no agent node, kwok's
            # nodes schedulable again.
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                await self.kube.delete(f"/api/v1/nodes/{NODE_NAME}")
                await self.kube.delete(
                    f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{NODE_NAME}"
                )
                await self._cordon_simulated_nodes(False)
        for client in (self._kube, self._agent_api):
            if client is not None:
                await client.aclose()
        self._kube = self._agent_api = None
        if self.plane is not None and self._owns_plane:
            await asyncio.to_thread(self.plane.stop)
        self.plane = None

    # -- what users do --------------------------------------------------------------------------

    async def apply(self, obj: Obj, plural: str) -> Obj:
        """A Train is created by the researcher; anything else is applied by an admin
        (server-side apply, as ``kubectl apply --server-side``)."""
        namespace = obj["metadata"].get("namespace", REQUEST_NAMESPACE)
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        url = self._path(obj["apiVersion"], plural, namespace)
        if plural == constants.TRAIN_PLURAL:
            annotations = {**(obj["metadata"].get("annotations") or {})}
            annotations[REQUESTED_BY] = RESEARCHER_USER
            obj["metadata"]["annotations"] = annotations
        deadline = asyncio.get_running_loop().time() + NEW_KIND_SECONDS
        while True:
            if plural == constants.TRAIN_PLURAL:
                async with self._client("researcher") as researcher:
                    answer = await researcher.post(url, json=obj)
            else:
                answer = await self.kube.patch(
                    f"{url}/{obj['metadata']['name']}",
                    params={"fieldManager": "pht-demo", "force": "true"},
                    content=json.dumps(obj),
                    headers={"Content-Type": "application/apply-patch+yaml"},
                )
            # A CRD just installed can answer 503 for a moment after it is Established, while
            # the API server builds its handler (as kubectl users see right after an install).
            if answer.status_code != 503 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        if answer.status_code >= 400:
            raise RuntimeError(f"applying {obj['kind']}: HTTP {answer.status_code} {answer.text}")
        result: Obj = answer.json()
        return result

    async def kube_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the Kubernetes API as a cluster admin."""
        return await self.kube.request(method, path, **kwargs)

    @property
    def requester(self) -> str:
        return RESEARCHER_USER

    @property
    def requester_kubeconfig(self) -> Path:
        assert self.plane is not None
        return self.plane.kubeconfigs["researcher"]

    @staticmethod
    def _path(api_version: str, plural: str, namespace: str, name: str = "") -> str:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    async def get_train(self, name: str, namespace: str = REQUEST_NAMESPACE) -> Obj:
        answer = await self.kube.get(
            self._path(constants.GROUP_VERSION, constants.TRAIN_PLURAL, namespace, name)
        )
        answer.raise_for_status()
        result: Obj = answer.json()
        return result

    async def approve(self, train: Obj, approver: str = STEWARD_USER) -> str:
        """Approve as the steward, with the steward's own kubeconfig and ``pht approve``."""
        assert self.plane is not None
        meta = train["metadata"]
        process = await asyncio.create_subprocess_exec(
            *_pht(),
            "approve",
            meta["name"],
            "--namespace",
            meta["namespace"],
            "--comment",
            "Reviewed image, queries and purpose (station demo on a real control plane).",
            "--kubeconfig",
            str(self.plane.kubeconfigs["steward"]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"pht approve failed: {output.decode(errors='replace')}")
        return output.decode(errors="replace").strip()

    async def list_objects(self, api_version: str, plural: str, namespace: str) -> list[Obj]:
        answer = await self.kube.get(self._path(api_version, plural, namespace))
        answer.raise_for_status()
        items: list[Obj] = answer.json().get("items", [])
        return items


def _pht() -> list[str]:
    return [sys.executable, "-m", "pht_cli.main"]
