"""Helpers for the scheduling, validation and upgrade tests against the real control plane:
run Jobs built exactly as the operator builds them, namespaces of our own, pods read back."""

import copy
import datetime
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml
from realcluster_kube import REPO, wait_for

from pht_contract.evaluation import evaluate
from pht_contract.hashing import spec_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_operator import runobjects
from pht_operator.names import run_names
from pht_operator.settings import OperatorSettings

Obj = dict[str, Any]

#: The station namespace the example manifests name (only used in labels and annotations).
STATION_NS = "rcs-requests"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    # Warnings too: Pod Security judges a Job's pod template when the Job is created.
    "pod-security.kubernetes.io/warn": "restricted",
}


def example(kind_dir: str, name: str) -> Obj:
    loaded: Obj = yaml.safe_load((REPO / "examples" / kind_dir / f"{name}.yaml").read_text())
    return copy.deepcopy(loaded)


def make_namespace(admin: httpx.Client, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    body = {"metadata": {"name": name, "labels": dict(labels or {})}}
    answer = admin.post("/api/v1/namespaces", json=body)
    assert answer.status_code == 201, answer.text
    return name


def settings_for(run_namespace: str) -> OperatorSettings:
    return OperatorSettings(
        station_namespaces=[STATION_NS],
        run_namespace=run_namespace,
        station_api_url="http://127.0.0.1:1",
        run_api_url="http://10.96.0.50:8081",
        station_api_namespace="rcs-system",
        api_token="unused",
        health_port=0,
        metrics_port=0,
    )


def run_request(train: Obj, policy: Obj, name: str) -> runobjects.RunRequest:
    """The operator's RunRequest for an admitted Train (as running.RunSteps builds it)."""
    policy_spec = StationPolicySpec.model_validate(policy["spec"])
    spec = TrainSpec.model_validate(train["spec"])
    decision = evaluate(spec, policy_spec)
    assert decision.admitted, decision.message
    uid = str(uuid.uuid4())
    return runobjects.RunRequest(
        uid=uid,
        namespace=STATION_NS,
        name=name,
        spec=spec,
        spec_hash=spec_hash(spec),
        policy=policy_spec,
        timeout_seconds=decision.timeout_seconds,
        names=run_names(uid, name),
    )


def submit_run(admin: httpx.Client, request: runobjects.RunRequest, run_ns: str) -> Obj:
    """Create the run's Secret, NetworkPolicy and Job as the operator does; the Job back."""
    settings = settings_for(run_ns)
    made = admin.post(
        f"/api/v1/namespaces/{run_ns}/secrets",
        json=runobjects.build_secret(request, "t0ken", settings),
    )
    assert made.status_code == 201, made.text
    made = admin.post(
        f"/apis/networking.k8s.io/v1/namespaces/{run_ns}/networkpolicies",
        json=runobjects.build_network_policy(request, settings),
    )
    assert made.status_code == 201, made.text
    made = admin.post(
        f"/apis/batch/v1/namespaces/{run_ns}/jobs", json=runobjects.build_job(request, settings)
    )
    assert made.status_code == 201, made.text
    assert "warning" not in made.headers, made.headers["warning"]
    job: Obj = made.json()
    return job


def job_pods(admin: httpx.Client, run_ns: str, job_name: str) -> list[Obj]:
    answer = admin.get(
        f"/api/v1/namespaces/{run_ns}/pods", params={"labelSelector": f"job-name={job_name}"}
    )
    assert answer.status_code == 200, answer.text
    items: list[Obj] = answer.json()["items"]
    return items


def read_job(admin: httpx.Client, run_ns: str, job_name: str) -> Obj:
    answer = admin.get(f"/apis/batch/v1/namespaces/{run_ns}/jobs/{job_name}")
    assert answer.status_code == 200, answer.text
    job: Obj = answer.json()
    return job


def scheduled_node(admin: httpx.Client, run_ns: str, job_name: str, timeout: float = 60) -> str:
    """The node the real scheduler bound the run's pod to."""

    def bound() -> str | None:
        for pod in job_pods(admin, run_ns, job_name):
            node = pod["spec"].get("nodeName")
            if node:
                return str(node)
        return None

    return wait_for(bound, timeout=timeout)


def pod_scheduled_condition(pod: Obj) -> Obj | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return dict(cond)
    return None


def data_store_pod(name: str, node: str, labels: dict[str, str]) -> Obj:
    """A stand-in for the station's data store, pinned to one node (bound, not scheduled)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "containers": [{"name": "store", "image": "registry.health-ai.nl/store:1"}],
        },
    }


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_manifest(path: Path, obj: Obj) -> Path:
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    return path
