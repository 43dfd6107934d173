"""The run's Secret, NetworkPolicy and Job: upstream-schema valid and locked down."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest
from operator_harness import STATION_NS, operator_settings, policy_body, train_body

from pht_contract import constants
from pht_contract.evaluation import evaluate
from pht_contract.hashing import spec_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_operator import runobjects
from pht_operator.names import run_names

K8S_VERSION = "1.33"
UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def request(**spec: Any) -> tuple[runobjects.RunRequest, Any]:
    policy = StationPolicySpec.model_validate(
        policy_body(scheduling={"kueueQueue": "gpu", "priorityClassName": "pht-runs"})["spec"]
    )
    train = TrainSpec.model_validate(train_body("km", **spec)["spec"])
    decision = evaluate(train, policy)
    assert decision.admitted, decision.message
    req = runobjects.RunRequest(
        uid=UID,
        namespace=STATION_NS,
        name="km-survival-by-stage",
        spec=train,
        spec_hash=spec_hash(train),
        policy=policy,
        timeout_seconds=decision.timeout_seconds,
        names=run_names(UID, "km-survival-by-stage"),
    )
    return req, operator_settings("http://127.0.0.1:1")


GPU = {"resources": {"gpu": 1, "gpuModel": "NVIDIA-H100-80GB-HBM3", "minGpuMemoryMib": 81000}}


@pytest.mark.parametrize("spec", [{}, GPU], ids=["cpu", "gpu"])
def test_every_run_object_validates_against_the_upstream_schema(spec: dict[str, Any]) -> None:
    req, settings = request(**spec)
    for manifest in (
        runobjects.build_secret(req, "t0ken", settings),
        runobjects.build_network_policy(req, settings),
        runobjects.build_default_deny(settings),
        runobjects.build_job(req, settings),
    ):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_the_job_pod_is_locked_down() -> None:
    req, settings = request(**GPU)
    job = runobjects.build_job(req, settings)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["suspend"] is True  # Kueue admits it
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert pod["priorityClassName"] == "pht-runs"
    assert pod["automountServiceAccountToken"] is False
    assert pod["dnsPolicy"] == "None"
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["scratch"]["emptyDir"]["sizeLimit"] == "1Gi"
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/run/pht"]["readOnly"] is True
    assert mounts["/dev/shm"]["name"] == "shm"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env[constants.ENV_API_URL] == "http://10.96.0.50:8081"
    assert env[constants.ENV_TOKEN_FILE] == "/var/run/pht/token"
    assert env[constants.ENV_TRAIN_UID] == UID
    assert env["HOME"] == env["TMPDIR"] == env[constants.ENV_SCRATCH] == "/scratch"
    assert env[constants.ENV_QUERIES_DIR] == runobjects.QUERIES_DIR
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["ephemeral-storage"] == "1Gi"
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = {e["key"]: e for e in terms["nodeSelectorTerms"][0]["matchExpressions"]}
    assert expressions["nvidia.com/gpu.present"]["values"] == ["true"]
    assert expressions["nvidia.com/gpu.product"]["values"] == ["NVIDIA-H100-80GB-HBM3"]
    assert expressions["nvidia.com/gpu.memory"] == {
        "key": "nvidia.com/gpu.memory",
        "operator": "Gt",
        "values": ["80999"],
    }
    preferred = pod["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == {
        "app.kubernetes.io/component": "station-api"
    }
    assert "ownerReferences" not in job["metadata"]
    assert job["metadata"]["labels"][constants.LABEL_TRAIN_UID] == UID
    assert len(job["metadata"]["name"]) <= 63


def test_a_cpu_run_gets_no_gpu_and_no_gpu_affinity() -> None:
    req, settings = request()
    pod = runobjects.build_job(req, settings)["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert "nodeAffinity" not in pod["affinity"]
    assert "tolerations" not in pod


def test_the_secret_holds_the_token_and_queries_and_the_policy_only_opens_the_api() -> None:
    req, settings = request()
    secret = runobjects.build_secret(req, "t0ken", settings)
    assert base64.b64decode(secret["data"]["token"]) == b"t0ken"
    assert "survival.rq" in secret["data"]
    policy = runobjects.build_network_policy(req, settings)["spec"]
    assert policy["ingress"] == []
    (egress,) = policy["egress"]
    assert egress["ports"] == [{"protocol": "TCP", "port": 8081}]
    assert {"ipBlock": {"cidr": "10.96.0.50/32"}} in egress["to"]
    # the station API pods of the station API's namespace only, not any namespace's copies
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "pht-station"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "station-api"}},
    } in egress["to"]
    assert all(peer.get("namespaceSelector") != {} for peer in egress["to"])
    deny = runobjects.build_default_deny(settings)["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_names_are_deterministic_and_short() -> None:
    long_name = "a" * 253
    names = run_names(UID, long_name)
    assert names == run_names(UID, long_name)
    assert all(len(n) <= 63 for n in (names.job, names.secret, names.network_policy))
    assert names.job.startswith("pht-0f1e2d3c-")
