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


def test_the_requester_annotation_is_required_and_must_be_the_creator(
    control_plane: ControlPlane, chart: Path
) -> None:
    with control_plane.client("researcher") as alice:
        missing = create(alice, "trains", train("km-missing", None))
        impostor = create(alice, "trains", train("km-impostor", "carol"))
    assert missing.status_code == 403, missing.text
    assert f'add the annotation {REQUESTED_BY}: "alice"' in missing.json()["message"]
    assert impostor.status_code == 403, impostor.text


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
