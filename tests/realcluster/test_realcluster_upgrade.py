"""`helm upgrade` from the previous release's chart to this one, as docs/install.md tells a
hospital: the previous chart (and its CRDs) installed, a StationPolicy, a Train and approvals
made under it by the people who make them, then the new CRDs applied (`kubectl apply
--server-side`; Helm never upgrades CRDs) and `helm upgrade`. What was there must read back and
keep validating, or be exactly what docs/install.md tells stewards to re-create."""

import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from realcluster_kube import CHART, REPO, run, wait_for
from realcluster_sched_support import example, write_manifest

from pht_cli.main import main as pht
from pht_contract.hashing import spec_hash
from pht_contract.trains import TrainSpec
from pht_operator.approvals import _parse as parse_approvals
from pht_sandbox.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow

#: The last commit of the previous release's chart.
PREVIOUS = "701ab22"
RELEASE = "rcs-up"
SYSTEM_NS = "rcs-up-system"
REQUESTS_NS = "rcs-up-requests"
RUNS_NS = "rcs-up-runs"
GROUP = "pht.health-ai.nl"
BASE = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}"
Obj = dict[str, Any]

#: Claims of a class no volume has: this release never takes the chart tests' static volumes.
NO_CLASS = {"storageClass": "rcs-no-volumes"}
VALUES: Obj = {
    "station": {"createNamespaces": True, "namespaces": [REQUESTS_NS]},
    "runNamespace": {"name": RUNS_NS},
    "rbac": {
        "stewards": [{"kind": "Group", "name": "pht:stewards"}],
        "researchers": [{"kind": "Group", "name": "pht:researchers"}],
    },
    "stationApi": {
        "persistence": {"store": NO_CLASS, "audit": NO_CLASS, "state": NO_CLASS},
        # The chart tests' station holds the default address (10.96.0.81).
        "service": {"internal": {"clusterIP": "10.96.0.181"}},
    },
}


@dataclass
class Upgrade:
    before: dict[str, Obj] = field(default_factory=dict)
    upgrade_output: str = ""


def previous_chart(target: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", PREVIOUS, "charts/pht-station"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "charts" / "pht-station"


def created(answer: httpx.Response) -> Obj:
    assert answer.status_code == 201, answer.text
    body: Obj = answer.json()
    return body


def found(admin: httpx.Client, plural: str, name: str) -> Obj | None:
    answer = admin.get(f"{BASE}/{plural}/{name}")
    if answer.status_code != 200:
        return None
    body: Obj = answer.json()
    return body


def apply_crds(crds: Path, kubeconfig: Path) -> None:
    applied = run(
        "kubectl", ["apply", "--server-side", "--force-conflicts", "-f", str(crds)], kubeconfig
    )
    assert applied.returncode == 0, applied.stderr


@pytest.fixture(scope="module")
def upgrade(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upgrade]:
    work = tmp_path_factory.mktemp("upgrade")
    old_chart = previous_chart(work)
    values = write_manifest(work / "values.yaml", VALUES)
    admin_config = control_plane.kubeconfigs["admin"]
    state = Upgrade()
    try:
        # A cluster as the previous release left it: its CRDs, then its chart.
        apply_crds(old_chart / "crds", admin_config)
        installed = run(
            "helm",
            [
                "install",
                RELEASE,
                str(old_chart),
                "-n",
                SYSTEM_NS,
                "--create-namespace",
                "-f",
                str(values),
            ],
            admin_config,
            timeout=300,
        )
        assert installed.returncode == 0, installed.stderr
        with control_plane.client() as admin:
            state.before["policy"] = wait_for(
                lambda: found(admin, "stationpolicies", "station-policy")
            )
        train = example("trains", "kaplan-meier")
        train["metadata"] = {
            "name": "km-before",
            "namespace": REQUESTS_NS,
            "annotations": {f"{GROUP}/requested-by": "alice"},
        }
        with control_plane.client("researcher") as alice:
            state.before["train"] = created(alice.post(f"{BASE}/trains", json=train))
        approved_hash = spec_hash(TrainSpec.model_validate(state.before["train"]["spec"]))
        single = example("approvals", "approve-km")
        single["metadata"] = {"name": "km-before-bob", "namespace": REQUESTS_NS}
        single["spec"]["train"] = {"name": "km-before", "specHash": approved_hash}
        single["spec"]["approver"] = "bob"
        # A standing approval as the previous release defined it: no requesters, no bounds.
        standing = example("approvals", "standing-federated")
        standing["metadata"] = {"name": "rounds-before", "namespace": REQUESTS_NS}
        for newer in ("requesters", "parameters"):
            del standing["spec"]["standing"][newer]
        standing["spec"]["approver"] = "bob"
        with control_plane.client("steward") as bob:
            state.before["single"] = created(bob.post(f"{BASE}/trainapprovals", json=single))
            state.before["standing"] = created(bob.post(f"{BASE}/trainapprovals", json=standing))

        # The upgrade, as docs/install.md says: CRDs first, then the chart.
        apply_crds(CHART / "crds", admin_config)
        upgraded = run(
            "helm",
            ["upgrade", RELEASE, str(CHART), "-n", SYSTEM_NS, "-f", str(values)],
            admin_config,
            timeout=300,
        )
        assert upgraded.returncode == 0, upgraded.stderr
        state.upgrade_output = upgraded.stdout
        yield state
    finally:
        # Whatever happened, leave the cluster with this release's CRDs for the other tests.
        apply_crds(CHART / "crds", admin_config)


def read(admin: httpx.Client, plural: str, name: str) -> Obj:
    answer = admin.get(f"{BASE}/{plural}/{name}")
    assert answer.status_code == 200, answer.text
    body: Obj = answer.json()
    return body


PLURAL = {"policy": "stationpolicies", "train": "trains", "single": "trainapprovals"}
PLURAL["standing"] = "trainapprovals"


def resubmittable(obj: Obj) -> Obj:
    """The object as a person would submit it again: server-set metadata and status removed."""
    meta = obj["metadata"]
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": keep,
        "spec": obj["spec"],
    }


def test_the_release_upgrades_in_place(control_plane: ControlPlane, upgrade: Upgrade) -> None:
    status = run(
        "helm",
        ["status", RELEASE, "-n", SYSTEM_NS, "-o", "json"],
        control_plane.kubeconfigs["admin"],
    )
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["info"]["status"] == "deployed"
    assert info["version"] == 2
    with control_plane.client() as admin:
        crd = admin.get(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/trainapprovals.{GROUP}"
        ).json()
    standing = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["standing"]
    assert "requesters" in standing["required"], "the new CRDs were not applied"


def test_old_objects_read_back_unchanged(control_plane: ControlPlane, upgrade: Upgrade) -> None:
    with control_plane.client() as admin:
        for key, before in upgrade.before.items():
            after = read(admin, PLURAL[key], before["metadata"]["name"])
            assert after["metadata"]["uid"] == before["metadata"]["uid"], key
            if key == "policy":
                # Helm re-applies the policy from values; what the steward set stays set.
                assert after["spec"]["approval"] == before["spec"]["approval"]
                assert (
                    after["spec"]["dataAccess"]["allowedGraphs"]
                    == before["spec"]["dataAccess"]["allowedGraphs"]
                )
            else:
                assert after["spec"] == before["spec"], key


def test_an_approval_made_before_still_matches_its_train(
    control_plane: ControlPlane, upgrade: Upgrade
) -> None:
    """The Train's spec hash, computed by this release from the Train as the new CRD serves it,
    is the one the steward approved under the previous release."""
    with control_plane.client() as admin:
        train = read(admin, "trains", "km-before")
        approvals = admin.get(f"{BASE}/trainapprovals").json()["items"]
    parsed = dict(parse_approvals(approvals))
    single = parsed["km-before-bob"]
    assert single.spec.train is not None
    assert single.spec.train.spec_hash == spec_hash(TrainSpec.model_validate(train["spec"]))


def test_old_objects_validate_under_the_new_crds_except_standing_approvals(
    control_plane: ControlPlane,
    upgrade: Upgrade,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    verdicts: dict[str, tuple[bool, bool]] = {}
    with control_plane.client() as admin:
        for key, before in upgrade.before.items():
            obj = resubmittable(read(admin, PLURAL[key], before["metadata"]["name"]))
            # Re-created (dry run) where no station's admission policies apply: the schema
            # and CEL decide, not who asks.
            ns = obj["metadata"]["namespace"] = "default"
            answer = admin.post(
                f"/apis/{GROUP}/v1alpha1/namespaces/{ns}/{PLURAL[key]}",
                params={"dryRun": "All", "fieldValidation": "Strict"},
                json=obj,
            )
            assert answer.status_code in (201, 400, 422), answer.text
            path = write_manifest(tmp_path / f"{key}.yaml", obj)
            code = pht(["validate", str(path)])
            out = capsys.readouterr().out
            verdicts[key] = (answer.status_code == 201, code == 0)
            if key == "standing":
                assert "spec.standing.requesters: required field is missing" in out, out
                assert "requesters" in answer.json()["message"]
    assert verdicts == {
        "policy": (True, True),
        "train": (True, True),
        "single": (True, True),
        # Standing approvals now name the requesters they cover: re-create them.
        "standing": (False, False),
    }


def test_an_old_standing_approval_counts_for_nothing_until_re_created(
    control_plane: ControlPlane, upgrade: Upgrade
) -> None:
    """The operator of this release skips it (it cannot know whose Trains it covers), yet the
    stored object is not broken: its status can still be written (unchanged fields ratchet)."""
    with control_plane.client() as admin:
        approvals = admin.get(f"{BASE}/trainapprovals").json()["items"]
        patched = admin.patch(
            f"{BASE}/trainapprovals/rounds-before/status",
            content=json.dumps({"status": {"runsUsed": 1}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert "rounds-before" not in dict(parse_approvals(approvals))
    assert patched.status_code == 200, patched.text
    renewed = yaml.safe_load(yaml.safe_dump(upgrade.before["standing"]["spec"]))
    renewed["standing"]["requesters"] = ["carol"]
    body = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "rounds-renewed"},
        "spec": renewed,
    }
    with control_plane.client("steward") as bob:
        made = bob.post(f"{BASE}/trainapprovals", json=body)
    assert made.status_code == 201, made.text
    with control_plane.client() as admin:
        approvals = admin.get(f"{BASE}/trainapprovals").json()["items"]
    assert "rounds-renewed" in dict(parse_approvals(approvals))


def test_researchers_and_stewards_keep_working_after_the_upgrade(
    control_plane: ControlPlane, upgrade: Upgrade
) -> None:
    train = example("trains", "kaplan-meier")
    train["metadata"] = {"name": "km-after", "annotations": {f"{GROUP}/requested-by": "alice"}}
    with control_plane.client("researcher") as alice:
        assert alice.post(f"{BASE}/trains", json=train).status_code == 201
        assert alice.get(f"{BASE}/trains/km-before").status_code == 200
    approval = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "km-after-bob"},
        "spec": {"train": {"name": "km-after", "specHash": "ab" * 32}, "approver": "bob"},
    }
    with control_plane.client("steward") as bob:
        assert bob.post(f"{BASE}/trainapprovals", json=approval).status_code == 201
