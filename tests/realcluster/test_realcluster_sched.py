"""Where the real kube-scheduler puts a run: the Job exactly as the operator builds it, from the
example Trains and policy, in a run namespace that enforces the restricted Pod Security
Standard, on kwok's nodes cpu-0, gpu-0 and gpu-1 (4 GPUs each, tainted)."""

import datetime
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from realcluster_kube import wait_for
from realcluster_sched_support import (
    RESTRICTED,
    data_store_pod,
    example,
    job_pods,
    make_namespace,
    pod_scheduled_condition,
    read_job,
    run_request,
    scheduled_node,
    submit_run,
    utc,
)

from pht_contract.conditions import Reason
from pht_operator import jobstates
from pht_sandbox.controlplane.cluster import ControlPlane
from pht_sandbox.jobcontroller import UNSCHEDULABLE_MESSAGE

pytestmark = pytest.mark.slow

GPU_NODES = {"gpu-0", "gpu-1"}
#: Runs per placement check: all landing beside the store by chance is 1 in 2**REPEATS.
REPEATS = 6


def policy() -> dict[str, Any]:
    body = example("policies", "station-policy")
    body["spec"]["limits"]["maxGpus"] = 16
    body["spec"]["limits"]["allowedGpuModels"].append("NVIDIA-H100-80GB-HBM3")
    return body


def gpu_train(gpus: int = 1, model: str = "NVIDIA-H100-80GB-HBM3") -> dict[str, Any]:
    body = example("trains", "gpu-training-step")
    # kwok's GPU nodes offer H100s; small requests so cpu/memory never decide placement.
    body["spec"]["resources"] = {
        "cpu": "1",
        "memory": "1Gi",
        "gpu": gpus,
        "gpuModel": model,
    }
    return body


def cpu_train() -> dict[str, Any]:
    return example("trains", "kaplan-meier")


@pytest.fixture(scope="module")
def admin(control_plane: ControlPlane) -> Iterator[httpx.Client]:
    with control_plane.client() as client:
        yield client


@pytest.fixture(scope="module")
def run_ns(admin: httpx.Client) -> str:
    return make_namespace(admin, "rcs-runs", RESTRICTED)


@pytest.fixture(scope="module")
def store_ns(admin: httpx.Client) -> str:
    return make_namespace(admin, "rcs-store")


def place_store(admin: httpx.Client, store_ns: str, node: str) -> None:
    labels = policy()["spec"]["scheduling"].get(
        "dataStorePodLabels", {"app.kubernetes.io/component": "station-api"}
    )
    for pod in admin.get(f"/api/v1/namespaces/{store_ns}/pods").json()["items"]:
        name = pod["metadata"]["name"]
        admin.delete(f"/api/v1/namespaces/{store_ns}/pods/{name}", params={"gracePeriodSeconds": 0})
    wait_for(lambda: not admin.get(f"/api/v1/namespaces/{store_ns}/pods").json()["items"])
    made = admin.post(
        f"/api/v1/namespaces/{store_ns}/pods", json=data_store_pod(f"store-{node}", node, labels)
    )
    assert made.status_code == 201, made.text


def test_a_gpu_train_lands_on_a_gpu_node_with_its_gpu_limit(
    admin: httpx.Client, run_ns: str
) -> None:
    request = run_request(gpu_train(), policy(), "gpu-step")
    job = submit_run(admin, request, run_ns)
    node = scheduled_node(admin, run_ns, job["metadata"]["name"])
    assert node in GPU_NODES
    (pod,) = job_pods(admin, run_ns, job["metadata"]["name"])
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    # Admitted under the restricted Pod Security Standard, and the Job ran to completion.
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    job_name = request.names.job
    wait_for(lambda: jobstates.job_condition(read_job(admin, run_ns, job_name), "Complete"))


def test_a_cpu_train_never_lands_on_a_gpu_node(
    admin: httpx.Client, run_ns: str, store_ns: str
) -> None:
    # Even with the data store on a GPU node, the taint keeps CPU runs off it.
    place_store(admin, store_ns, "gpu-1")
    for i in range(REPEATS):
        request = run_request(cpu_train(), policy(), f"km-{i}")
        job = submit_run(admin, request, run_ns)
        assert scheduled_node(admin, run_ns, job["metadata"]["name"]) == "cpu-0"


@pytest.mark.parametrize("store_node", ["gpu-1", "gpu-0"])
def test_a_gpu_run_lands_next_to_the_data_store(
    admin: httpx.Client, run_ns: str, store_ns: str, store_node: str
) -> None:
    place_store(admin, store_ns, store_node)
    placed = []
    for i in range(REPEATS):
        request = run_request(gpu_train(), policy(), f"near-{store_node}-{i}")
        job = submit_run(admin, request, run_ns)
        placed.append(scheduled_node(admin, run_ns, job["metadata"]["name"]))
    assert placed == [store_node] * REPEATS


def test_a_train_asking_for_more_gpus_than_any_node_has_is_unschedulable(
    admin: httpx.Client, run_ns: str
) -> None:
    request = run_request(gpu_train(gpus=8), policy(), "too-many-gpus")
    job = submit_run(admin, request, run_ns)
    name = job["metadata"]["name"]

    def refused() -> dict[str, Any] | None:
        for pod in job_pods(admin, run_ns, name):
            cond = pod_scheduled_condition(pod)
            if cond and cond.get("status") == "False":
                return pod
        return None

    pod = wait_for(refused, timeout=60)
    cond = pod_scheduled_condition(pod)
    assert cond is not None
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]
    assert cond["reason"] == "Unschedulable"
    # The scheduler's own words: both GPU nodes lack GPUs, the CPU node is excluded; the
    # emulator's job controller says the same.
    assert cond["message"] == UNSCHEDULABLE_MESSAGE

    # The operator's job-state logic, fed the real Job and pod.
    real_job = read_job(admin, run_ns, name)
    since = utc(cond["lastTransitionTime"])
    pending = request.policy.timeouts.pending_seconds
    waiting = jobstates.classify(real_job, [pod], pending, since + datetime.timedelta(seconds=5))
    assert (waiting.phase, waiting.reason) == (jobstates.Phase.PENDING, Reason.PENDING)
    late = since + datetime.timedelta(seconds=pending + 1)
    given_up = jobstates.classify(real_job, [pod], pending, late)
    assert (given_up.phase, given_up.reason) == (jobstates.Phase.FAILED, Reason.UNSCHEDULABLE)
    assert "Insufficient nvidia.com/gpu" in given_up.message


def test_a_gpu_model_the_cluster_lacks_leaves_the_run_pending(
    admin: httpx.Client, run_ns: str
) -> None:
    """The policy allows A100s, but this cluster has only H100s: no node matches the affinity."""
    request = run_request(gpu_train(model="NVIDIA-A100-SXM4-80GB"), policy(), "no-a100")
    job = submit_run(admin, request, run_ns)

    def refused() -> dict[str, Any] | None:
        for pod in job_pods(admin, run_ns, job["metadata"]["name"]):
            cond = pod_scheduled_condition(pod)
            if cond and cond.get("status") == "False":
                return pod
        return None

    pod = wait_for(refused, timeout=60)
    cond = pod_scheduled_condition(pod)
    assert cond is not None and cond["reason"] == "Unschedulable"
    assert cond["message"].startswith(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    ), cond["message"]
    late = utc(cond["lastTransitionTime"]) + datetime.timedelta(
        seconds=request.policy.timeouts.pending_seconds
    )
    given_up = jobstates.classify(
        read_job(admin, run_ns, job["metadata"]["name"]),
        [pod],
        request.policy.timeouts.pending_seconds,
        late,
    )
    assert given_up.reason == Reason.UNSCHEDULABLE
