"""The control plane itself: the version we pinned, real readiness, the simulated nodes, client
certificate identities under RBAC, and a Job driven by the real Job controller, scheduler and
kwok to success and to failure."""

import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest

from pht_sandbox.controlplane.cluster import ControlPlane
from pht_sandbox.controlplane.kwokstages import FAILED, OUTCOME_ANNOTATION
from pht_sandbox.controlplane.nodes import GPU_RESOURCE, NODES

pytestmark = pytest.mark.slow


def wait_for(check: Any, timeout: float = 60.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def make_namespace(admin: httpx.Client) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    answer = admin.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert answer.status_code == 201, answer.text
    return name


def test_api_server_reports_the_pinned_version(control_plane: ControlPlane) -> None:
    with control_plane.client() as admin:
        version = admin.get("/version").json()
    assert version["gitVersion"] == "v1.37.2"
    assert (version["major"], version["minor"]) == ("1", "37")


def test_controllers_created_the_default_service_account_and_root_ca(
    control_plane: ControlPlane,
) -> None:
    with control_plane.client() as admin:
        assert admin.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200
        root_ca = admin.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt").json()
    assert root_ca["data"]["ca.crt"].strip() == control_plane.ca.read_text().strip()


def test_simulated_nodes_are_ready_with_gpu_capacity_and_taint(control_plane: ControlPlane) -> None:
    with control_plane.client() as admin:
        items = {n["metadata"]["name"]: n for n in admin.get("/api/v1/nodes").json()["items"]}
    assert set(items) == {node.name for node in NODES}
    for node in NODES:
        status = items[node.name]["status"]
        ready = [c for c in status["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        taints = items[node.name]["spec"].get("taints", [])
        if node.gpus:
            assert status["allocatable"][GPU_RESOURCE] == str(node.gpus)
            assert any(t["key"] == GPU_RESOURCE and t["effect"] == "NoSchedule" for t in taints)
        else:
            assert GPU_RESOURCE not in status["allocatable"]


def test_every_component_listens_on_loopback_only(control_plane: ControlPlane) -> None:
    sockets = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    pids = {str(c.process.pid) for c in control_plane.components if c.process}
    ours = [line for line in sockets.splitlines() if any(f"pid={p}," in line for p in pids)]
    assert ours, "no listening socket of the control plane was found"
    for line in ours:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::1]:")), line


def test_identities_are_authorised_by_rbac(control_plane: ControlPlane) -> None:
    with control_plane.client("researcher") as researcher:
        denied = researcher.get("/api/v1/namespaces/default/secrets")
    assert denied.status_code == 403
    assert 'User "alice" cannot list resource "secrets"' in denied.json()["message"]
    with control_plane.client("admin") as admin:
        assert admin.get("/api/v1/namespaces/default/secrets").status_code == 200


def job(name: str, outcome: str | None = None) -> dict[str, Any]:
    annotations = {OUTCOME_ANNOTATION: outcome} if outcome else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "registry.example/none:1"}],
                },
            },
        },
    }


def job_condition(admin: httpx.Client, namespace: str, name: str) -> dict[str, Any] | None:
    status = admin.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}").json()["status"]
    for cond in status.get("conditions", []):
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return dict(cond)
    return None


def test_a_job_runs_to_completion_on_a_cpu_node(control_plane: ControlPlane) -> None:
    with control_plane.client() as admin:
        ns = make_namespace(admin)
        created = admin.post(f"/apis/batch/v1/namespaces/{ns}/jobs", json=job("ok"))
        assert created.status_code == 201, created.text
        cond = wait_for(lambda: job_condition(admin, ns, "ok"))
        pods = admin.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
    assert cond["type"] == "Complete"
    assert [p["spec"]["nodeName"] for p in pods] == ["cpu-0"]
    assert pods[0]["status"]["phase"] == "Succeeded"


def test_a_failing_pod_fails_its_job(control_plane: ControlPlane) -> None:
    with control_plane.client() as admin:
        ns = make_namespace(admin)
        created = admin.post(f"/apis/batch/v1/namespaces/{ns}/jobs", json=job("bad", FAILED))
        assert created.status_code == 201, created.text
        cond = wait_for(lambda: job_condition(admin, ns, "bad"))
        pods = admin.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
    assert cond["type"] == "Failed"
    assert cond["reason"] == "BackoffLimitExceeded"
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1
