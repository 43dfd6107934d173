"""The real operator and the real station API, each a local process, under the chart's RBAC on a
real API server: their Kubernetes identities are the chart's ServiceAccounts, with tokens from
the real TokenRequest API, so every verb they use is one the chart grants — and nothing more.

A researcher applies a Train with kubectl, a steward approves it with `pht approve`; the run's
Job, Secret and NetworkPolicy must pass the real admission chain (Pod Security `restricted` in
the run namespace), kwok plays the node, and the Train must end as a hospital user expects.
"""

import base64
import copy
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from realcluster_kube import (
    API_ACCOUNT,
    FULLNAME,
    GROUP,
    OPERATOR_ACCOUNT,
    OPERATOR_CREDENTIAL,
    REPO,
    REQUESTED_BY,
    REQUESTS_NS,
    RUNS_NS,
    SYSTEM_NS,
    LocalProcess,
    mint_token,
    pht,
    run,
    token_kubeconfig,
    wait_for,
)

from pht_contract import constants
from pht_contract.conditions import Reason
from pht_sandbox.controlplane.cluster import ControlPlane
from pht_sandbox.controlplane.kwokstages import FAILING_TRAIN_NAMES, LONG_RUNNING_TRAIN_NAMES
from pht_sandbox.controlplane.processes import free_port

pytestmark = pytest.mark.slow

TRAINS = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/trains"
MANAGED = f"{constants.LABEL_MANAGED_BY}={constants.MANAGED_BY}"
#: The graph the chart's default StationPolicy allows.
GRAPH = "urn:pht:graph:default"
#: The operator's Deployment settings that only make sense inside the pod.
IN_POD_ONLY = {
    "PHT_OPERATOR_STATION_API_URL",
    "PHT_OPERATOR_API_TOKEN_FILE",
    "PHT_OPERATOR_HEALTH_PORT",
    "PHT_OPERATOR_METRICS_PORT",
    "HOME",
    "TMPDIR",
}


@dataclass
class Station:
    api: LocalProcess
    operator: LocalProcess
    health_url: str
    operator_kubeconfig: Path
    api_url: str
    #: Seconds from the operator's process start to its first status on a Train.
    first_action_seconds: float = 0.0


def chart_operator_env(plane: ControlPlane) -> dict[str, str]:
    """The operator's environment exactly as the chart's Deployment sets it."""
    with plane.client() as admin:
        deployments = admin.get(f"/apis/apps/v1/namespaces/{SYSTEM_NS}/deployments").json()
    (deployment,) = [d for d in deployments["items"] if d["metadata"]["name"] == OPERATOR_ACCOUNT]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def start_station_api(plane: ControlPlane, work: Path) -> tuple[LocalProcess, str, str]:
    """`pht api` on 127.0.0.1 with a small synthetic cohort, the chart's operator credential and
    the chart's station-API ServiceAccount token for TokenReview/SubjectAccessReview."""
    cohort = str(work / "cohort.nq")
    pht(["cohort", "generate", "--patients", "40", "--graph", GRAPH, "--out", cohort])
    pht(["load", cohort, "--store", str(work / "store"), "--graph", GRAPH])
    with plane.client() as admin:
        secret = admin.get(f"/api/v1/namespaces/{SYSTEM_NS}/secrets/{OPERATOR_CREDENTIAL}")
    assert secret.status_code == 200, secret.text
    (encoded,) = secret.json()["data"].values()

    credential = work / "operator-credential"
    credential.write_bytes(base64.b64decode(encoded))
    credential.chmod(0o600)
    api_token = work / "api-sa-token"
    api_token.write_text(mint_token(plane, SYSTEM_NS, API_ACCOUNT))
    internal, external = free_port(), free_port()
    api = LocalProcess(
        "station-api",
        ["api"],
        {
            "PHT_API_STORE": str(work / "store"),
            "PHT_API_STATE_DIR": str(work / "api-state"),
            "PHT_API_INTERNAL_HOST": "127.0.0.1",
            "PHT_API_INTERNAL_PORT": str(internal),
            "PHT_API_EXTERNAL_HOST": "127.0.0.1",
            "PHT_API_EXTERNAL_PORT": str(external),
            "PHT_API_OPERATOR_TOKEN_FILE": str(credential),
            "PHT_API_IDENTITY_MODE": "kubernetes",
            "PHT_API_KUBERNETES_API_URL": plane.server,
            "PHT_API_KUBERNETES_TOKEN_FILE": str(api_token),
            "PHT_API_KUBERNETES_CA_FILE": str(plane.ca),
            "PHT_API_PROGRESS_TICK_SECONDS": "1",
        },
        work / "station-api.log",
    ).start()
    wait_for(lambda: _ok(f"http://127.0.0.1:{external}/readyz", api), timeout=60)
    return api, f"http://127.0.0.1:{internal}", f"http://127.0.0.1:{external}"


def _ok(url: str, process: LocalProcess) -> bool:
    assert process.alive(), f"{process.name} exited:\n{process.output()[-3000:]}"
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_operator(
    plane: ControlPlane,
    work: Path,
    api_url: str,
    credential: Path,
    kubeconfig: Path,
    overrides: dict[str, str] | None = None,
) -> tuple[LocalProcess, str]:
    """`pht operator` configured as the chart's Deployment, but reaching the station API on
    127.0.0.1 and listening on 127.0.0.1."""
    env = {k: v for k, v in chart_operator_env(plane).items() if k not in IN_POD_ONLY}
    health = free_port()
    env |= {
        "PHT_OPERATOR_STATION_API_URL": api_url,
        "PHT_OPERATOR_API_TOKEN_FILE": str(credential),
        "PHT_OPERATOR_LISTEN_HOST": "127.0.0.1",
        "PHT_OPERATOR_HEALTH_PORT": str(health),
        "PHT_OPERATOR_METRICS_PORT": "0",
        "PHT_OPERATOR_POLL_INTERVAL_SECONDS": "1",
        **(overrides or {}),
    }
    operator = LocalProcess(
        "operator", ["operator", "--kubeconfig", str(kubeconfig)], env, work / "operator.log"
    ).start()
    return operator, f"http://127.0.0.1:{health}/healthz"


@pytest.fixture(scope="module")
def station(
    control_plane: ControlPlane, chart: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Station]:
    work = tmp_path_factory.mktemp("station")
    api, api_url, external_url = start_station_api(control_plane, work)
    kubeconfig = token_kubeconfig(
        control_plane,
        mint_token(control_plane, SYSTEM_NS, OPERATOR_ACCOUNT),
        OPERATOR_ACCOUNT,
        work / "operator.kubeconfig",
    )
    operator, health_url = start_operator(
        control_plane, work, api_url, work / "operator-credential", kubeconfig
    )
    station = Station(api, operator, health_url, kubeconfig, external_url)
    try:
        apply_train("km-first", "researcher", control_plane)
        wait_for(lambda: summary("km-first", control_plane), timeout=90)
        station.first_action_seconds = time.monotonic() - operator.started_at
        yield station
    finally:
        operator.stop()
        api.stop()
        print(f"--- operator log ---\n{operator.output()[-6000:]}")
        print(f"--- station API log ---\n{api.output()[-3000:]}")


def train_manifest(name: str, requested_by: str) -> dict[str, Any]:
    manifest = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["name"] = name
    manifest["metadata"]["annotations"] = {REQUESTED_BY: requested_by}
    manifest["spec"]["requester"]["organisation"] = "example-org"  # the chart's default policy
    return dict(manifest)


def apply_train(
    name: str, who: str, plane: ControlPlane, manifest: dict[str, Any] | None = None
) -> Any:
    user = {"researcher": "alice", "researcher2": "carol"}[who]
    body = manifest if manifest is not None else train_manifest(name, user)
    return run("kubectl", ["apply", "-f", "-"], plane.kubeconfigs[who], stdin=yaml.safe_dump(body))


def get_train(name: str, plane: ControlPlane) -> dict[str, Any] | None:
    with plane.client() as admin:
        answer = admin.get(f"{TRAINS}/{name}")
    return answer.json() if answer.status_code == 200 else None


def summary(name: str, plane: ControlPlane) -> str | None:
    body = get_train(name, plane) or {}
    return (body.get("status") or {}).get("summary")


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def run_objects(plane: ControlPlane, name: str) -> dict[str, list[str]]:
    selector = {"labelSelector": f"{MANAGED},{GROUP}/train-name={name}"}
    found: dict[str, list[str]] = {}
    with plane.client() as admin:
        for kind, path in (
            ("jobs", f"/apis/batch/v1/namespaces/{RUNS_NS}/jobs"),
            ("secrets", f"/api/v1/namespaces/{RUNS_NS}/secrets"),
            ("networkpolicies", f"/apis/networking.k8s.io/v1/namespaces/{RUNS_NS}/networkpolicies"),
            ("pods", f"/api/v1/namespaces/{RUNS_NS}/pods"),
        ):
            items = admin.get(path, params=selector).json()["items"]
            found[kind] = [i["metadata"]["name"] for i in items]
    return found


def test_the_operator_acts_on_trains_within_seconds_under_the_charts_rbac(
    control_plane: ControlPlane, station: Station
) -> None:
    # Process start (Python imports included) to the first status written on a Train.
    print(f"operator start to first Train status: {station.first_action_seconds:.1f} s")
    assert station.first_action_seconds < 15, station.operator.output()[-4000:]
    assert summary("km-first", control_plane) == "AwaitingApproval"
    health = httpx.get(station.health_url, timeout=5)
    assert health.status_code == 200, health.text
    assert health.json()["alive"] is True
    assert "missingPermissions" not in health.json()
    assert "Not enough permissions" not in station.operator.output()
    # A refusal logs its status code; a timestamp's milliseconds (",403") are not one.
    refusals = re.findall(r"(?<![,.\d])403\b|Forbidden", station.operator.output())
    assert refusals == [], station.operator.output()[-4000:]


def reasons(body: dict[str, Any]) -> set[str]:
    return {c.get("reason", "") for c in (body.get("status") or {}).get("conditions") or []}


def approve(name: str, plane: ControlPlane) -> str:
    """The steward's own command, with the steward's kubeconfig."""
    return pht(
        ["approve", name, "-n", REQUESTS_NS, "--kubeconfig", str(plane.kubeconfigs["steward"])]
    )


def finished(name: str, plane: ControlPlane) -> dict[str, Any] | None:
    body = get_train(name, plane)
    done = body and (body.get("status") or {}).get("summary") in ("Succeeded", "Failed")
    return body if done else None


def test_an_approved_train_runs_in_the_restricted_namespace_and_ends_without_output(
    control_plane: ControlPlane, station: Station
) -> None:
    applied = apply_train("km-run", "researcher", control_plane)
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: summary("km-run", control_plane) == "AwaitingApproval", timeout=30)
    approved = time.monotonic()
    approve("km-run", control_plane)
    body = wait_for(lambda: finished("km-run", control_plane), timeout=60)
    ended_after = time.monotonic() - approved
    with control_plane.client() as admin:
        pods = admin.get(
            f"/api/v1/namespaces/{RUNS_NS}/pods",
            params={"labelSelector": f"{GROUP}/train-name=km-run"},
        ).json()["items"]
        jobs = admin.get(
            f"/apis/batch/v1/namespaces/{RUNS_NS}/jobs",
            params={"labelSelector": f"{GROUP}/train-name=km-run"},
        ).json()["items"]
    # The real Job controller made a pod that Pod Security `restricted` admitted, kwok ran it.
    assert [j["status"].get("succeeded") for j in jobs] == [1], jobs
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    assert pods[0]["spec"]["nodeName"] == "cpu-0"
    # The real Job controller writes the Job's outcome a sync after the pod ends: the Train
    # must not fall back from Running to "Job created" (queued) meanwhile.
    with control_plane.client() as admin:
        events = admin.get(
            f"/api/v1/namespaces/{REQUESTS_NS}/events",
            params={"fieldSelector": "involvedObject.name=km-run"},
        ).json()["items"]
    # In the order the operator decided them (each Event's microsecond eventTime): the Events
    # are posted in the background, so two posted together may be stored in either order.
    events.sort(key=lambda e: (e.get("eventTime") or "", int(e["metadata"]["resourceVersion"])))
    assert all(e.get("eventTime") for e in events), events
    said = [e["reason"] for e in events]
    if Reason.RUNNING in said:
        assert Reason.JOB_CREATED not in said[said.index(Reason.RUNNING) :], said
    # Nothing was uploaded: the run ends failed, and says why.
    assert body["status"]["summary"] == "Failed", body["status"]
    assert Reason.NO_OUTPUT in reasons(body), body["status"]
    print(f"approval to terminal status: {ended_after:.1f} s")


def test_a_run_whose_pod_fails_ends_with_the_backoff_reason(
    control_plane: ControlPlane, station: Station
) -> None:
    (name,) = FAILING_TRAIN_NAMES
    assert apply_train(name, "researcher", control_plane).returncode == 0
    wait_for(lambda: summary(name, control_plane) == "AwaitingApproval", timeout=30)
    approve(name, control_plane)
    body = wait_for(lambda: finished(name, control_plane), timeout=90)
    assert body["status"]["summary"] == "Failed", body["status"]
    assert Reason.BACKOFF_LIMIT_EXCEEDED in reasons(body), body["status"]
    with control_plane.client() as admin:
        pods = admin.get(
            f"/api/v1/namespaces/{RUNS_NS}/pods",
            params={"labelSelector": f"{GROUP}/train-name={name}"},
        ).json()["items"]
    # The real Job controller saw a pod fail (kwok: exit code 1), not a shortcut.
    assert [p["status"]["phase"] for p in pods] == ["Failed"]
    (state,) = [c["state"] for c in pods[0]["status"]["containerStatuses"]]
    assert state["terminated"]["exitCode"] == 1


def test_deleting_a_running_train_removes_every_run_object(
    control_plane: ControlPlane, station: Station
) -> None:
    (name,) = LONG_RUNNING_TRAIN_NAMES  # kwok keeps its pod running
    assert apply_train(name, "researcher", control_plane).returncode == 0
    wait_for(lambda: summary(name, control_plane) == "AwaitingApproval", timeout=30)
    approve(name, control_plane)

    def all_made() -> bool:
        found = run_objects(control_plane, name)
        return all(found[k] for k in ("jobs", "secrets", "networkpolicies", "pods"))

    wait_for(all_made, timeout=60)
    wait_for(lambda: summary(name, control_plane) == "Running", timeout=30)
    deleted = run(
        "kubectl",
        ["delete", "train", name, "-n", REQUESTS_NS, "--wait=false"],
        control_plane.kubeconfigs["admin"],
    )
    assert deleted.returncode == 0, deleted.stderr
    wait_for(lambda: get_train(name, control_plane) is None, timeout=60)
    wait_for(lambda: not any(run_objects(control_plane, name).values()), timeout=60)


def test_an_approved_trains_spec_cannot_be_edited(
    control_plane: ControlPlane, station: Station
) -> None:
    changed = train_manifest("km-run", "alice")
    changed["spec"]["parameters"] = '{"timePoints": [1], "groupBy": "overallStage"}'
    by_alice = apply_train("km-run", "researcher", control_plane, changed)
    assert by_alice.returncode != 0
    assert 'cannot patch resource "trains"' in by_alice.stderr, by_alice.stderr
    by_admin = run(
        "kubectl",
        ["apply", "-f", "-"],
        control_plane.kubeconfigs["admin"],
        stdin=yaml.safe_dump(changed),
    )
    assert by_admin.returncode != 0
    assert "the spec is immutable once created, except suspend" in by_admin.stderr


def copy_role(
    plane: ControlPlane,
    source_ns: str,
    name: str,
    target_ns: str,
    account: str,
    drop: tuple[str, str] | None = None,
) -> None:
    """The chart's Role `name` copied into `target_ns` (less one `(resource, verb)`), bound to
    `account` of the station's namespace."""
    with plane.client() as admin:
        role = admin.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{source_ns}/roles/{name}")
        assert role.status_code == 200, role.text
        rules = role.json()["rules"]
        if drop is not None:
            for rule in rules:
                if drop[0] in rule["resources"]:
                    rule["verbs"] = [v for v in rule["verbs"] if v != drop[1]]
        base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{target_ns}"
        made = admin.post(
            f"{base}/roles", json={"metadata": {"name": "partial-operator"}, "rules": rules}
        )
        assert made.status_code == 201, made.text
        binding = {
            "metadata": {"name": "partial-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "partial-operator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": SYSTEM_NS}],
        }
        bound = admin.post(f"{base}/rolebindings", json=binding)
        assert bound.status_code == 201, bound.text


def test_a_role_missing_one_verb_is_reported_by_the_health_check(
    control_plane: ControlPlane, station: Station, tmp_path: Path
) -> None:
    """The chart's Roles, copied to a second pair of namespaces without `create` on Jobs: the
    operator says exactly what is missing instead of looking healthy."""
    requests_ns, runs_ns, account = "pht-partial-requests", "pht-partial-runs", "partial-operator"
    with control_plane.client() as admin:
        for ns in (requests_ns, runs_ns):
            made = admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
            assert made.status_code == 201, made.text
        made = admin.post(
            f"/api/v1/namespaces/{SYSTEM_NS}/serviceaccounts",
            json={"metadata": {"name": account}},
        )
        assert made.status_code == 201, made.text
    copy_role(control_plane, REQUESTS_NS, OPERATOR_ACCOUNT, requests_ns, account)
    copy_role(
        control_plane, RUNS_NS, f"{OPERATOR_ACCOUNT}-runs", runs_ns, account, ("jobs", "create")
    )
    kubeconfig = token_kubeconfig(
        control_plane,
        mint_token(control_plane, SYSTEM_NS, account),
        account,
        tmp_path / "partial.kubeconfig",
    )
    operator, health_url = start_operator(
        control_plane,
        tmp_path,
        "http://127.0.0.1:9",  # never reached: nothing runs
        tmp_path / "no-credential",
        kubeconfig,
        {"PHT_OPERATOR_STATION_NAMESPACES": requests_ns, "PHT_OPERATOR_RUN_NAMESPACE": runs_ns},
    )
    try:

        def health() -> httpx.Response | None:
            # Only once our operator serves its port (it logs it): never another process's.
            if f"health on :{health_url.split(':')[2].split('/')[0]}" not in operator.output():
                assert operator.alive(), operator.output()[-3000:]
                return None
            try:
                return httpx.get(health_url, timeout=2)
            except httpx.HTTPError:
                assert operator.alive(), operator.output()[-3000:]
                return None

        answer = wait_for(health, timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.json()["missingPermissions"] == [f"create jobs.batch in {runs_ns}"]
        assert "lacks 1 permission(s): create jobs.batch in pht-partial-runs" in operator.output()
    finally:
        operator.stop()


def test_the_station_api_asks_the_real_server_who_a_caller_is_and_what_they_may_do(
    control_plane: ControlPlane, station: Station
) -> None:
    """TokenReview and SubjectAccessReview with the chart's station-API ServiceAccount: a
    steward's token passes RBAC (the Train has no result: 404), anyone else's is refused."""
    steward_role = f"{FULLNAME}-{SYSTEM_NS}-steward"
    with control_plane.client() as admin:
        assert (
            admin.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{steward_role}").status_code
            == 200
        )
        for account in ("api-steward", "api-nobody"):
            made = admin.post(
                f"/api/v1/namespaces/{REQUESTS_NS}/serviceaccounts",
                json={"metadata": {"name": account}},
            )
            assert made.status_code == 201, made.text
        binding = {
            "metadata": {"name": "api-steward"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": steward_role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "api-steward", "namespace": REQUESTS_NS}
            ],
        }
        bound = admin.post(
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{REQUESTS_NS}/rolebindings",
            json=binding,
        )
        assert bound.status_code == 201, bound.text
    url = f"{station.api_url}/stewards/results/{REQUESTS_NS}/km-first"

    def ask(token: str) -> httpx.Response:
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    steward = ask(mint_token(control_plane, REQUESTS_NS, "api-steward"))
    nobody = ask(mint_token(control_plane, REQUESTS_NS, "api-nobody"))
    forged = ask("not-a-token")
    assert steward.status_code == 404, steward.text
    assert nobody.status_code == 403, nobody.text
    assert "may not release train pht-requests/km-first" in nobody.text
    assert forged.status_code == 401, forged.text


POLICY = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/stationpolicies/station-policy"


def gpu_train(name: str, gpus: int) -> dict[str, Any]:
    manifest = train_manifest(name, "alice")
    manifest["spec"]["resources"] = {"cpu": "1", "memory": "2Gi", "gpu": gpus}
    return manifest


def patch_policy(plane: ControlPlane, patch: dict[str, Any]) -> None:
    with plane.client() as admin:
        answer = admin.patch(
            POLICY,
            content=json.dumps({"spec": patch}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert answer.status_code == 200, answer.text


def test_gpu_trains_are_placed_by_the_real_scheduler_or_end_unschedulable(
    control_plane: ControlPlane, station: Station
) -> None:
    """Through the real operator: a 1-GPU Train runs on a GPU node; an 8-GPU Train (no node has
    more than 4) ends Failed/Unschedulable with the scheduler's own words after the policy's
    pending timeout."""
    with control_plane.client() as admin:
        before = admin.get(POLICY).json()["spec"]
    patch_policy(control_plane, {"limits": {"maxGpus": 8}, "timeouts": {"pendingSeconds": 5}})
    try:
        for name, gpus in (("gpu-one", 1), ("gpu-eight", 8)):
            applied = apply_train(name, "researcher", control_plane, gpu_train(name, gpus))
            assert applied.returncode == 0, applied.stderr
            wait_for(lambda n=name: summary(n, control_plane) == "AwaitingApproval", timeout=30)
            approve(name, control_plane)
        one = wait_for(lambda: finished("gpu-one", control_plane), timeout=90)
        eight = wait_for(lambda: finished("gpu-eight", control_plane), timeout=120)
        with control_plane.client() as admin:
            pods = admin.get(
                f"/api/v1/namespaces/{RUNS_NS}/pods",
                params={"labelSelector": f"{GROUP}/train-name=gpu-one"},
            ).json()["items"]
    finally:
        patch_policy(
            control_plane,
            {"limits": before.get("limits"), "timeouts": before.get("timeouts")},
        )
    assert [p["spec"]["nodeName"] for p in pods][:1] in (["gpu-0"], ["gpu-1"]), pods
    assert Reason.NO_OUTPUT in reasons(one), one["status"]  # it ran; it uploaded nothing
    assert eight["status"]["summary"] == "Failed", eight["status"]
    running = condition(eight, "Running")
    assert running.get("reason") == Reason.UNSCHEDULABLE, eight["status"]
    assert "Insufficient nvidia.com/gpu" in running.get("message", ""), running
