"""The chart installed for real: `helm install` into a real API server as a cluster admin would,
then the people's view of it — what RBAC and the admission policies let researchers and stewards
do — judged by the real server, not by rendering."""

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from realcluster_kube import (
    FULLNAME,
    GROUP,
    RELEASE,
    REPO,
    REQUESTED_BY,
    REQUESTS_NS,
    RUNS_NS,
    SYSTEM_NS,
    run,
    wait_for,
)

from pht_sandbox.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow


def train(name: str, requested_by: str | None) -> dict[str, Any]:
    manifest = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["name"] = name
    if requested_by is not None:
        manifest["metadata"]["annotations"] = {REQUESTED_BY: requested_by}
    return dict(manifest)


def create(
    client: httpx.Client, plural: str, body: dict[str, Any], ns: str = REQUESTS_NS
) -> httpx.Response:
    return client.post(f"/apis/{GROUP}/v1alpha1/namespaces/{ns}/{plural}", json=body)


@pytest.fixture(scope="module", autouse=True)
def policies_in_effect(control_plane: ControlPlane, chart: Path) -> None:
    """The API server picks up new admission policies, and a new CRD's type for them, a moment
    after `helm install` returns (docs/install.md says so); wait until a Train created without
    the annotation comes back with it, then remove that probe."""
    attempt = iter(range(1000))

    def requester_is_set() -> bool | None:
        name = f"probe-{next(attempt)}"
        with control_plane.client("researcher") as alice:
            made = create(alice, "trains", train(name, None))
        if made.status_code == 201:
            with control_plane.client() as admin:
                admin.delete(f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/trains/{name}")
            if made.json()["metadata"].get("annotations", {}).get(REQUESTED_BY) == "alice":
                return True
        return None

    wait_for(requester_is_set, timeout=60, every=1.0)


def test_every_object_of_the_chart_is_admitted(control_plane: ControlPlane, chart: Path) -> None:
    status = run(
        "helm",
        ["status", RELEASE, "-n", SYSTEM_NS, "-o", "json"],
        control_plane.kubeconfigs["admin"],
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["info"]["status"] == "deployed"
    with control_plane.client() as admin:
        runs = admin.get(f"/api/v1/namespaces/{RUNS_NS}").json()
        vaps = admin.get("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies").json()
        crds = admin.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()
    assert runs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert len(vaps["items"]) >= 2
    established = {
        c["metadata"]["name"]
        for c in crds["items"]
        if any(
            x["type"] == "Established" and x["status"] == "True" for x in c["status"]["conditions"]
        )
    }
    assert {f"trains.{GROUP}", f"trainapprovals.{GROUP}", f"stationpolicies.{GROUP}"} <= established


def test_helm_test_passes_once_the_station_api_is_running(
    control_plane: ControlPlane, chart: Path
) -> None:
    def station_api_running() -> bool:
        with control_plane.client() as admin:
            pods = admin.get(f"/api/v1/namespaces/{SYSTEM_NS}/pods").json()["items"]
        return any(
            p["metadata"]["name"].endswith("station-api-0")
            and p["status"].get("phase") == "Running"
            for p in pods
        )

    wait_for(station_api_running, timeout=120)
    tested = run(
        "helm",
        ["test", RELEASE, "-n", SYSTEM_NS, "--timeout", "2m"],
        control_plane.kubeconfigs["admin"],
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Phase:          Succeeded" in tested.stdout


def test_a_researcher_creates_a_train_with_their_own_name(
    control_plane: ControlPlane, chart: Path
) -> None:
    with control_plane.client("researcher") as alice:
        made = create(alice, "trains", train("km-alice", "alice"))
    assert made.status_code == 201, made.text


def test_the_api_server_sets_the_requester_for_a_researcher_who_leaves_it_out(
    control_plane: ControlPlane, chart: Path
) -> None:
    with control_plane.client() as admin:
        policies = admin.get("/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies")
    assert policies.status_code == 200, policies.text
    assert [p["metadata"]["name"] for p in policies.json()["items"]] == [
        f"{FULLNAME}-{SYSTEM_NS}-train-requesters"
    ]
    with control_plane.client("researcher") as alice:
        made = create(alice, "trains", train("km-unsigned", None))
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["annotations"] == {REQUESTED_BY: "alice"}


def test_someone_elses_name_is_replaced_by_the_creators(
    control_plane: ControlPlane, chart: Path
) -> None:
    with control_plane.client("researcher") as alice:
        made = create(alice, "trains", train("km-impostor", "carol"))
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["annotations"][REQUESTED_BY] == "alice"
    with control_plane.client("researcher2") as carol:
        stored = carol.get(f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/trains/km-impostor")
    assert stored.status_code == 200, stored.text
    assert stored.json()["metadata"]["annotations"][REQUESTED_BY] == "alice"


def test_other_annotations_are_kept_beside_the_requester(
    control_plane: ControlPlane, chart: Path
) -> None:
    manifest = train("km-team", None)
    manifest["metadata"]["annotations"] = {"example.org/team": "epidemiology"}
    with control_plane.client("researcher2") as carol:
        made = create(carol, "trains", manifest)
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["annotations"] == {
        "example.org/team": "epidemiology",
        REQUESTED_BY: "carol",
    }


def test_trains_outside_the_station_namespaces_are_left_alone(
    control_plane: ControlPlane, chart: Path
) -> None:
    """The policies are bound to the station namespaces only: elsewhere nothing is set."""
    with control_plane.client() as admin:
        made_ns = admin.post("/api/v1/namespaces", json={"metadata": {"name": "not-a-station"}})
        assert made_ns.status_code in (201, 409), made_ns.text
        elsewhere = train("km-elsewhere", None)
        elsewhere["metadata"]["namespace"] = "not-a-station"
        made = create(admin, "trains", elsewhere, ns="not-a-station")
    assert made.status_code == 201, made.text
    assert REQUESTED_BY not in made.json()["metadata"].get("annotations", {})


def test_the_requester_annotation_cannot_be_changed(
    control_plane: ControlPlane, chart: Path
) -> None:
    patch = json.dumps({"metadata": {"annotations": {REQUESTED_BY: "carol"}}})
    headers = {"Content-Type": "application/merge-patch+json"}
    url = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/trains/km-fixed"
    with control_plane.client("researcher") as alice:
        assert create(alice, "trains", train("km-fixed", "alice")).status_code == 201
        # Researchers may not edit Trains at all ...
        by_alice = alice.patch(url, content=patch, headers=headers)
    assert by_alice.status_code == 403, by_alice.text
    assert 'cannot patch resource "trains"' in by_alice.json()["message"]
    # ... and not even a cluster admin may rewrite who asked.
    with control_plane.client("admin") as admin:
        by_admin = admin.patch(url, content=patch, headers=headers)
    assert by_admin.status_code == 403, by_admin.text
    assert "cannot be added, changed or removed" in by_admin.json()["message"]


def test_a_researcher_cannot_approve_write_policy_or_read_secrets(
    control_plane: ControlPlane, chart: Path
) -> None:
    approval = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "self-approval"},
        "spec": {"train": {"name": "km-alice", "specHash": "0" * 64}, "approver": "alice"},
    }
    with control_plane.client("researcher") as alice:
        assert create(alice, "trainapprovals", approval).status_code == 403
        assert (
            alice.get(
                f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/stationpolicies"
            ).status_code
            == 200
        )
        policy = {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "StationPolicy",
            "metadata": {"name": "mine"},
        }
        assert create(alice, "stationpolicies", policy).status_code == 403
        assert alice.get(f"/api/v1/namespaces/{REQUESTS_NS}/secrets").status_code == 403
        assert alice.get(f"/api/v1/namespaces/{RUNS_NS}/pods").status_code == 403
        assert alice.get(f"/apis/batch/v1/namespaces/{RUNS_NS}/jobs").status_code == 403


def test_a_steward_approves_in_their_own_name_only(
    control_plane: ControlPlane, chart: Path
) -> None:
    def approval(name: str, approver: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "TrainApproval",
            "metadata": {"name": name},
            "spec": {"train": {"name": "km-alice", "specHash": "a" * 64}, "approver": approver},
        }

    with control_plane.client("steward") as bob:
        mine = create(bob, "trainapprovals", approval("by-bob", "bob"))
        forged = create(bob, "trainapprovals", approval("as-dave", "dave"))
    assert mine.status_code == 201, mine.text
    assert forged.status_code == 403, forged.text
    assert "spec.approver must be your own username (bob)" in forged.json()["message"]
