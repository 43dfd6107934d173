"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, each its own process, started in dependency order.

The API server authenticates by client certificate and authorises with Node and RBAC, with its
default admission plugins (Pod Security, ValidatingAdmissionPolicy, ServiceAccount, ...). kwok
plays the kubelets of one CPU node and two GPU nodes: it moves pods through their phases but runs
nothing. Every component listens on 127.0.0.1 only. From `start()` to `stop()`, SIGTERM stops
this process as Ctrl-C does, so no component outlives it (:mod:`pht_sandbox.terminating`).
"""

import functools
import json
import shutil
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from pht_sandbox.controlplane.authentication import OidcTrust, write_authentication_configuration
from pht_sandbox.controlplane.binaries import ControlPlaneBinaries
from pht_sandbox.controlplane.kwokstages import write_kwok_config
from pht_sandbox.controlplane.nodes import NODES, node_object, node_status
from pht_sandbox.controlplane.pki import Authority, Identity, KeyPair, service_account_key
from pht_sandbox.controlplane.processes import Component, ControlPlaneError, free_port
from pht_sandbox.terminating import raise_on_sigterm

START_TIMEOUT_SECONDS = 120.0
#: A /16, as kind uses: the API server hands out addresses from 10.96.1.0 on first and keeps
#: 10.96.0.0/24 for Services that name their own (the chart's internal listener, 10.96.0.81), so
#: a fixed address never collides with one given out earlier. A /24 keeps only 16 such addresses.
SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"

#: The people and components the control plane knows, by kubeconfig name.
IDENTITIES: dict[str, Identity] = {
    "admin": Identity("pht-admin", ("system:masters",)),
    "researcher": Identity("alice", ("pht:researchers",)),
    "researcher2": Identity("carol", ("pht:researchers",)),
    "steward": Identity("bob", ("pht:stewards",)),
    "steward2": Identity("dave", ("pht:stewards",)),
    "controller-manager": Identity("system:kube-controller-manager"),
    "scheduler": Identity("system:kube-scheduler"),
    "kwok": Identity("pht-kwok", ("system:masters",)),
}


def kubeconfig(server: str, ca: Path, user: str, credentials: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "pht-local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": "pht-local", "user": user}}],
        "current-context": user,
    }


@dataclass
class ControlPlane:
    """Start with `start()`, stop with `stop()`; `kubeconfigs[name]` is a file per identity.

    With `trusted_issuers`, the API server also accepts ID tokens from those OpenID issuers.
    """

    workdir: Path
    binaries: ControlPlaneBinaries
    trusted_issuers: tuple[OidcTrust, ...] = ()
    components: list[Component] = field(default_factory=list)
    kubeconfigs: dict[str, Path] = field(default_factory=dict)
    server: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    _pki: Authority | None = None
    _clients: dict[str, KeyPair] = field(default_factory=dict)
    _restore_sigterm: Callable[[], None] | None = None

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def ca(self) -> Path:
        assert self._pki is not None
        return self._pki.ca.cert

    def client(self, identity: str = "admin", timeout: float = 30.0) -> httpx.Client:
        """An HTTP client that speaks to the API server as one of IDENTITIES."""
        pair = self._clients[identity]
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(pair.cert), str(pair.key))
        return httpx.Client(base_url=self.server, verify=context, timeout=timeout)

    def start(self) -> None:
        begun = time.monotonic()
        if self._restore_sigterm is None:
            self._restore_sigterm = raise_on_sigterm()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - begun

    def _start(self) -> None:
        pki_dir = self.workdir / "pki"
        self._pki = Authority(pki_dir)
        sa_key = service_account_key(pki_dir)
        serving = self._pki.serving("apiserver")
        for name, identity in IDENTITIES.items():
            self._clients[name] = self._pki.client(f"client-{name}", identity)

        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        for name, pair in self._clients.items():
            path = self.workdir / "kubeconfigs" / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            creds = {"client-certificate": str(pair.cert), "client-key": str(pair.key)}
            path.write_text(
                yaml.safe_dump(kubeconfig(self.server, self.ca, IDENTITIES[name].user, creds))
            )
            self.kubeconfigs[name] = path

        etcd = self._component(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=pht",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=pht=http://127.0.0.1:{peer_port}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        etcd.wait_until(
            lambda: (
                httpx.get(f"http://127.0.0.1:{etcd_port}/health", timeout=2).json().get("health")
                == "true"
            ),
            START_TIMEOUT_SECONDS,
            "healthy",
        )

        authentication: list[str] = []
        if self.trusted_issuers:
            config = self.workdir / "authentication.yaml"
            write_authentication_configuration(self.trusted_issuers, config)
            authentication.append(f"--authentication-config={config}")
        apiserver = self._component(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self.ca}",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=false",
                "--profiling=false",
                *authentication,
            ],
        )
        with self.client("admin", timeout=5) as admin:
            apiserver.wait_until(
                lambda: admin.get("/readyz").text == "ok", START_TIMEOUT_SECONDS, "ready (/readyz)"
            )

        common = ["--bind-address=127.0.0.1", "--leader-elect=false"]
        common.append("--authorization-always-allow-paths=/healthz,/readyz,/livez")
        kcm_port, sched_port = free_port(), free_port()
        kcm = self._component(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfigs['controller-manager']}",
                f"--secure-port={kcm_port}",
                *common,
                "--use-service-account-credentials=true",
                f"--root-ca-file={self.ca}",
                f"--service-account-private-key-file={sa_key}",
                f"--cluster-signing-cert-file={self.ca}",
                f"--cluster-signing-key-file={self._pki.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
            ],
        )
        scheduler = self._component(
            "kube-scheduler",
            [
                str(self.binaries.kube_scheduler),
                f"--kubeconfig={self.kubeconfigs['scheduler']}",
                f"--authentication-kubeconfig={self.kubeconfigs['scheduler']}",
                f"--authorization-kubeconfig={self.kubeconfigs['scheduler']}",
                f"--secure-port={sched_port}",
                *common,
                "--profiling=false",
            ],
        )
        kwok_config = write_kwok_config(self.binaries.kwok_stages, self.workdir / "kwok.yaml")
        kwok = self._component(
            "kwok",
            [
                str(self.binaries.kwok),
                f"--kubeconfig={self.kubeconfigs['kwok']}",
                f"--config={kwok_config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.0.0.0/24",
                "--node-ip=127.0.0.1",
                "--node-lease-duration-seconds=40",
            ],
        )
        for component, port in ((kcm, kcm_port), (scheduler, sched_port)):
            component.wait_until(
                functools.partial(_healthz_ok, port),
                START_TIMEOUT_SECONDS,
                "healthy (/healthz)",
            )
        with self.client("admin") as admin:
            kcm.wait_until(
                lambda: _controllers_ready(admin),
                START_TIMEOUT_SECONDS,
                "serving the default namespace",
            )
            self._create_nodes(admin)
            kwok.wait_until(
                lambda: _nodes_ready(admin), START_TIMEOUT_SECONDS, "reporting every node Ready"
            )
        for component in self.components:
            if component.ready_after is not None:
                self.timings[component.name] = component.ready_after

    def _component(self, name: str, argv: list[str]) -> Component:
        component = Component(name, argv, self.logs / f"{name}.log")
        component.start()
        self.components.append(component)
        return component

    def _create_nodes(self, admin: httpx.Client) -> None:
        for node in NODES:
            created = admin.post("/api/v1/nodes", json=node_object(node))
            if created.status_code not in (201, 409):
                raise ControlPlaneError(
                    f"creating node {node.name}: {created.status_code} {created.text}"
                )
            patched = admin.patch(
                f"/api/v1/nodes/{node.name}/status",
                content=json.dumps({"status": node_status(node)}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            if patched.status_code != 200:
                raise ControlPlaneError(
                    f"node {node.name} status: {patched.status_code} {patched.text}"
                )

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()
        if self._restore_sigterm is not None:
            self._restore_sigterm()
            self._restore_sigterm = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _healthz_ok(port: int) -> bool:
    # The components serve a self-signed certificate of their own; only the status is read.
    answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2)
    return answer.text == "ok"


def _controllers_ready(admin: httpx.Client) -> bool:
    account = admin.get("/api/v1/namespaces/default/serviceaccounts/default")
    root_ca = admin.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
    return account.status_code == 200 and root_ca.status_code == 200


def _nodes_ready(admin: httpx.Client) -> bool:
    items = admin.get("/api/v1/nodes").json().get("items", [])
    ready = {
        item["metadata"]["name"]
        for item in items
        for cond in item.get("status", {}).get("conditions", [])
        if cond.get("type") == "Ready" and cond.get("status") == "True"
    }
    return all(node.name in ready for node in NODES)
