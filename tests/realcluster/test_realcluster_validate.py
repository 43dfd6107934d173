"""`pht validate` and the real API server agree: for every manifest of a corpus of good and bad
Trains, StationPolicies and TrainApprovals, the exit code of `pht validate` is the verdict of a
server-side dry-run create as a cluster admin (with strict field validation, as `kubectl apply`
asks for). The CRDs are the chart's, applied as docs/install.md says; their CEL rules must be
admitted by the server's cost budget."""

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from realcluster_kube import CHART, REPO, run, wait_for
from realcluster_sched_support import example, make_namespace, write_manifest

from pht_cli.main import main as pht
from pht_sandbox.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow

GROUP = "pht.health-ai.nl"
PLURALS = {"Train": "trains", "StationPolicy": "stationpolicies", "TrainApproval": "trainapprovals"}
Obj = dict[str, Any]
Change = Callable[[Obj], None]


REVIEWS = "spec.disclosure.reviewedImages"
REVIEW = {
    "digest": "sha256:" + "a" * 64,
    "reviewer": "pht-admin",
    "reviewedAt": "2026-01-10T09:00:00Z",
    "expiresAt": "2026-07-10T09:00:00Z",
    "notes": "counts by stage only",
}
LATEST, TOO_LATE = "2027-01-11T09:00:00Z", "2027-01-11T09:00:01Z"
EARLY = "2026-01-10T08:59:59Z"
LINK_ONLY = {k: v for k, v in REVIEW.items() if k != "notes"} | {"link": "https://git.example/1"}
UNEXPLAINED = {k: v for k, v in REVIEW.items() if k != "notes"}
NO_REVIEWER = {k: v for k, v in REVIEW.items() if k != "reviewer"}


def put(path: str, value: Any) -> Change:
    def change(obj: Obj) -> None:
        *parents, last = path.split(".")
        node = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def drop(path: str) -> Change:
    def change(obj: Obj) -> None:
        *parents, last = path.split(".")
        node = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return change


def both(*changes: Change) -> Change:
    def change(obj: Obj) -> None:
        for one in changes:
            one(obj)

    return change


def standing() -> Obj:
    return example("approvals", "standing-federated")


def single() -> Obj:
    return example("approvals", "approve-km")


def km() -> Obj:
    return example("trains", "kaplan-meier")


def policy() -> Obj:
    return example("policies", "station-policy")


HASH = "ab" * 32
TRAIN_REF = {"name": "km", "specHash": HASH}

#: (id, base manifest, change, valid?) — the verdict both must give.
CORPUS: list[tuple[str, Callable[[], Obj], Change | None, bool]] = [
    # Good manifests: the examples as shipped, and spellings the server accepts.
    ("train-kaplan-meier", km, None, True),
    ("train-cohort-summary", lambda: example("trains", "cohort-summary"), None, True),
    ("train-federated", lambda: example("trains", "federated-logreg"), None, True),
    ("train-gpu", lambda: example("trains", "gpu-training-step"), None, True),
    ("policy-example", policy, None, True),
    ("approval-single", single, None, True),
    ("approval-standing", standing, None, True),
    ("train-null-field-is-dropped", km, put("spec.timeoutSeconds", None), True),
    ("train-whole-float-integer", km, put("spec.resources.gpu", 1.0), True),
    ("train-suspended", km, put("spec.suspend", True), True),
    ("train-graphs-only", km, both(drop("spec.queries"), put("spec.graphs", ["urn:g"])), True),
    # Wrong types.
    ("train-gpu-as-string", km, put("spec.resources.gpu", "2"), False),
    ("train-cpu-as-number", km, put("spec.resources.cpu", 2), False),
    ("train-timeout-as-string", km, put("spec.timeoutSeconds", "600"), False),
    ("train-suspend-as-string", km, put("spec.suspend", "true"), False),
    ("train-gpu-as-fraction", km, put("spec.resources.gpu", 1.5), False),
    ("train-command-not-a-list", km, put("spec.command", "python run.py"), False),
    ("policy-maxgpus-as-string", policy, put("spec.limits.maxGpus", "2"), False),
    ("policy-mincohort-as-bool", policy, put("spec.disclosure.minCohort", True), False),
    ("approval-maxruns-as-string", standing, put("spec.standing.maxRuns", "20"), False),
    ("approval-requesters-as-string", standing, put("spec.standing.requesters", "carol"), False),
    # Missing required fields.
    ("train-no-spec", km, drop("spec"), False),
    ("train-no-image", km, drop("spec.image"), False),
    ("train-no-requester", km, drop("spec.requester"), False),
    ("train-no-contact", km, drop("spec.requester.contact"), False),
    ("policy-no-allowed-graphs", policy, drop("spec.dataAccess.allowedGraphs"), False),
    ("approval-no-approver", single, drop("spec.approver"), False),
    ("approval-no-spec-hash", single, drop("spec.train.specHash"), False),
    ("approval-standing-no-requesters", standing, drop("spec.standing.requesters"), False),
    ("approval-standing-no-expiry", standing, drop("spec.standing.expiresAt"), False),
    # Patterns, enums, ranges and formats.
    ("train-bad-quantity", km, put("spec.resources.cpu", "lots"), False),
    ("train-bad-contact", km, put("spec.requester.contact", "not-an-address"), False),
    ("train-too-many-gpus", km, put("spec.resources.gpu", 17), False),
    ("train-negative-retries", km, put("spec.retries", -1), False),
    ("policy-unknown-approval-mode", policy, put("spec.approval.mode", "Anyone"), False),
    ("policy-zero-min-cohort", policy, put("spec.disclosure.minCohort", 0), False),
    ("approval-bad-spec-hash", single, put("spec.train.specHash", "XYZ"), False),
    ("approval-unknown-decision", single, put("spec.decision", "Maybe"), False),
    ("approval-date-not-date-time", standing, put("spec.standing.expiresAt", "2027-03-01"), False),
    ("approval-empty-query-hashes", standing, put("spec.standing.queryHashes", []), False),
    ("approval-empty-approver", single, put("spec.approver", ""), False),
    # Too long strings and lists.
    ("train-purpose-too-long", km, put("spec.purpose", "x" * 2049), False),
    ("train-too-many-args", km, put("spec.args", ["a"] * 17), False),
    ("train-too-many-graphs", km, put("spec.graphs", [f"urn:g:{i}" for i in range(33)]), False),
    ("train-arg-too-long", km, put("spec.args", ["a" * 1025]), False),
    ("approval-comment-too-long", single, put("spec.comment", "x" * 1025), False),
    ("policy-too-many-organisations", policy, put("spec.organisations", ["o"] * 65), False),
    # CEL rules.
    ("train-neither-queries-nor-graphs", km, drop("spec.queries"), False),
    ("policy-image-review", policy, put(REVIEWS, [REVIEW]), True),
    ("policy-review-366-days", policy, put(REVIEWS, [{**REVIEW, "expiresAt": LATEST}]), True),
    ("policy-review-link-only", policy, put(REVIEWS, [LINK_ONLY]), True),
    ("policy-review-367-days", policy, put(REVIEWS, [{**REVIEW, "expiresAt": TOO_LATE}]), False),
    ("policy-review-expires-first", policy, put(REVIEWS, [{**REVIEW, "expiresAt": EARLY}]), False),
    ("policy-review-bad-digest", policy, put(REVIEWS, [{**REVIEW, "digest": "sha256:1"}]), False),
    ("policy-review-unexplained", policy, put(REVIEWS, [UNEXPLAINED]), False),
    ("policy-review-no-reviewer", policy, put(REVIEWS, [NO_REVIEWER]), False),
    ("policy-bare-digests", policy, put("spec.disclosure.autoReleaseImageDigests", []), False),
    ("policy-wrong-name", policy, put("metadata.name", "my-policy"), False),
    ("approval-train-and-standing", standing, put("spec.train", TRAIN_REF), False),
    ("approval-neither-train-nor-standing", single, drop("spec.train"), False),
    (
        "approval-array-parameter-without-items",
        standing,
        put("spec.standing.parameters", [{"name": "xs", "type": "array"}]),
        False,
    ),
    (
        "approval-scalar-parameter-with-items",
        standing,
        put("spec.standing.parameters", [{"name": "n", "type": "number", "items": "number"}]),
        False,
    ),
    # Metadata, judged by the server for every object before the CRD's schema.
    ("train-name-with-capitals", km, put("metadata.name", "KM_Survival"), False),
    ("train-name-too-long", km, put("metadata.name", "k" * 254), False),
    ("train-dotted-name", km, put("metadata.name", "km.survival.v2"), True),
    ("approval-no-name", single, drop("metadata.name"), False),
    ("train-bad-label-value", km, put("metadata.labels", {"study": "lung cancer"}), False),
    ("train-bad-annotation-key", km, put("metadata.annotations", {"-bad": "x"}), False),
    ("train-label-as-number", km, put("metadata.labels", {"round": 1}), False),
    ("train-good-labels", km, put("metadata.labels", {"pht.health-ai.nl/study": "lung1"}), True),
    (
        "approval-minimum-above-maximum",
        standing,
        put(
            "spec.standing.parameters",
            [{"name": "n", "type": "number", "minimum": 5, "maximum": 1.5}],
        ),
        False,
    ),
    (
        "approval-minimum-equals-maximum",
        standing,
        put(
            "spec.standing.parameters",
            [{"name": "n", "type": "number", "minimum": 2, "maximum": 2.0}],
        ),
        True,
    ),
    (
        "policy-half-open-numeric-range",
        policy,
        put("spec.disclosure.releasableVariables", [{"name": "days", "minimum": 0}]),
        False,
    ),
    (
        "policy-inverted-numeric-range",
        policy,
        put("spec.disclosure.releasableVariables", [{"name": "days", "minimum": 10, "maximum": 1}]),
        False,
    ),
    # Unknown fields and duplicate list-map keys.
    ("train-unknown-field", km, put("spec.gpus", 2), False),
    ("approval-unknown-field", single, put("spec.expires", "tomorrow"), False),
    (
        "train-duplicate-query-names",
        km,
        lambda o: o["spec"]["queries"].append(copy.deepcopy(o["spec"]["queries"][0])),
        False,
    ),
    (
        "approval-duplicate-parameter-names",
        standing,
        lambda o: o["spec"]["standing"]["parameters"].append(
            {"name": "ageScale", "type": "number"}
        ),
        False,
    ),
]

#: What `pht validate` refuses although the schema the server holds admits it: rules the CRD's
#: OpenAPI schema and portable CEL cannot express. The operator reads objects with the same
#: models, so it would not honour these either; `pht validate` says so before submission.
STRICTER_OFFLINE: list[tuple[str, Callable[[], Obj], Change]] = [
    ("train-parameters-not-a-json-object", km, put("spec.parameters", "[1, 2]")),
]


STANDING_YAML = (REPO / "examples" / "approvals" / "standing-federated.yaml").read_text()
KM_YAML = (REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text()


def swap(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


#: Manifests as people write them, with YAML's implicit types: (id, text, valid?). Judged by
#: `kubectl apply --dry-run=server`, which reads YAML its own way.
YAML_CORPUS: list[tuple[str, str, bool]] = [
    (
        "unquoted-date-time",
        swap(STANDING_YAML, '"2027-03-01T00:00:00Z"', "2027-03-01T00:00:00Z"),
        True,
    ),
    ("unquoted-date", swap(STANDING_YAML, '"2027-03-01T00:00:00Z"', "2027-03-01"), False),
    ("unquoted-cpu-number", swap(KM_YAML, 'cpu: "1"', "cpu: 1"), False),
    ("cpu-millicores", swap(KM_YAML, 'cpu: "1"', "cpu: 500m"), True),
    ("memory-quoted", swap(KM_YAML, "memory: 2Gi", 'memory: "2Gi"'), True),
    ("timeout-quoted", swap(KM_YAML, "timeoutSeconds: 600", 'timeoutSeconds: "600"'), False),
]


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> None:
    """The chart's CRDs, applied as docs/install.md tells a hospital to before an upgrade."""
    applied = run(
        "kubectl",
        ["apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds")],
        control_plane.kubeconfigs["admin"],
    )
    assert applied.returncode == 0, applied.stderr

    def established() -> bool:
        with control_plane.client() as admin:
            items = admin.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()
        ready = {
            c["metadata"]["name"]
            for c in items["items"]
            for cond in c.get("status", {}).get("conditions") or []
            if cond["type"] == "Established" and cond["status"] == "True"
        }
        return {f"{p}.{GROUP}" for p in PLURALS.values()} <= ready

    wait_for(established, timeout=60)


@pytest.fixture(scope="module")
def admin(control_plane: ControlPlane) -> Iterator[httpx.Client]:
    with control_plane.client() as client:
        yield client


@pytest.fixture(scope="module")
def namespace(admin: httpx.Client, crds: None) -> str:
    return make_namespace(admin, "rcs-validate")


def manifest(base: Callable[[], Obj], change: Change | None, namespace: str) -> Obj:
    obj = base()
    obj["metadata"]["namespace"] = namespace
    if obj["kind"] == "Train":
        obj["metadata"]["annotations"] = {f"{GROUP}/requested-by": "alice"}
    if change is not None:
        change(obj)
    return obj


def server_verdict(admin: httpx.Client, obj: Obj, namespace: str) -> tuple[bool, str]:
    answer = admin.post(
        f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/{PLURALS[obj['kind']]}",
        params={"dryRun": "All", "fieldValidation": "Strict"},
        content=json.dumps(obj),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code in (201, 400, 422), answer.text
    return answer.status_code == 201, answer.json().get("message", "")


def offline_verdict(
    tmp_path: Path, obj: Obj, capsys: pytest.CaptureFixture[str]
) -> tuple[bool, str]:
    path = write_manifest(tmp_path / "manifest.yaml", obj)
    code = pht(["validate", str(path)])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    return code == 0, out.out


@pytest.mark.parametrize(
    ("base", "change", "valid"),
    [pytest.param(b, c, v, id=i) for i, b, c, v in CORPUS],
)
def test_pht_validate_agrees_with_the_api_server(
    admin: httpx.Client,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base: Callable[[], Obj],
    change: Change | None,
    valid: bool,
) -> None:
    obj = manifest(base, change, namespace)
    by_server, why_server = server_verdict(admin, obj, namespace)
    offline, why_offline = offline_verdict(tmp_path, obj, capsys)
    assert by_server == valid, f"server: {why_server}"
    assert offline == valid, f"pht validate: {why_offline}"


@pytest.mark.parametrize(("text", "valid"), [pytest.param(t, v, id=i) for i, t, v in YAML_CORPUS])
def test_pht_validate_reads_yaml_as_kubectl_does(
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    valid: bool,
) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(text.replace("namespace: pht-requests", f"namespace: {namespace}"))
    applied = run(
        "kubectl",
        ["apply", "--dry-run=server", "-f", str(path)],
        control_plane.kubeconfigs["admin"],
    )
    code = pht(["validate", str(path)])
    out = capsys.readouterr().out
    assert (applied.returncode == 0) == valid, applied.stdout + applied.stderr
    assert (code == 0) == valid, out


@pytest.mark.parametrize(
    ("base", "change"), [pytest.param(b, c, id=i) for i, b, c in STRICTER_OFFLINE]
)
def test_pht_validate_refuses_what_only_the_operator_would_catch(
    admin: httpx.Client,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base: Callable[[], Obj],
    change: Change,
) -> None:
    obj = manifest(base, change, namespace)
    by_server, why_server = server_verdict(admin, obj, namespace)
    offline, _ = offline_verdict(tmp_path, obj, capsys)
    assert by_server, f"server: {why_server}"
    assert not offline


def test_the_crds_cel_rules_fit_the_servers_cost_budget(admin: httpx.Client, crds: None) -> None:
    """Each CRD created afresh (dry run, under another group): the server estimates the cost of
    every CEL rule on create and refuses rules over budget; an update of an existing CRD would
    not re-check unchanged rules."""
    import yaml

    for path in sorted((CHART / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        rules = json.dumps(crd).count('"rule"')
        assert rules, f"{path.name} has no CEL rules to check"
        group = f"costcheck.{GROUP}"
        crd["spec"]["group"] = group
        crd["metadata"]["name"] = f"{crd['spec']['names']['plural']}.{group}"
        answer = admin.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            params={"dryRun": "All"},
            json=crd,
        )
        assert answer.status_code == 201, f"{path.name}: {answer.text}"


#: Updates judged by the CRDs' transition rules (a Train's spec is immutable except suspend; an
#: approval cannot change): (id, base, change, valid?), `pht validate --old` against a dry-run
#: update of the stored object.
UPDATES: list[tuple[str, Callable[[], Obj], Change, bool]] = [
    ("train-suspend", km, put("spec.suspend", True), True),
    ("train-new-label", km, put("metadata.labels", {"pht.health-ai.nl/study": "lung1"}), True),
    ("train-new-image", km, put("spec.image", "ghcr.io/pht-station/trains/other:1"), False),
    ("train-timeout-added", km, put("spec.timeoutSeconds", 60), False),
    ("train-resources-changed", km, put("spec.resources.cpu", "2"), False),
    ("approval-comment-changed", single, put("spec.comment", "changed my mind"), False),
    ("approval-decision-changed", single, put("spec.decision", "Reject"), False),
    ("approval-label-added", single, put("metadata.labels", {"reviewed": "yes"}), True),
]


@pytest.mark.parametrize(
    ("base", "change", "valid"), [pytest.param(b, c, v, id=i) for i, b, c, v in UPDATES]
)
def test_pht_validate_old_agrees_on_updates(
    admin: httpx.Client,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base: Callable[[], Obj],
    change: Change,
    valid: bool,
    request: pytest.FixtureRequest,
) -> None:
    old = manifest(base, drop("spec.timeoutSeconds") if base is km else None, namespace)
    old["metadata"]["name"] = request.node.callspec.id
    url = f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/{PLURALS[old['kind']]}"
    stored = admin.post(url, json=old)
    assert stored.status_code == 201, stored.text
    new = copy.deepcopy(old)
    change(new)
    new["metadata"]["resourceVersion"] = stored.json()["metadata"]["resourceVersion"]
    answer = admin.put(
        f"{url}/{old['metadata']['name']}",
        params={"dryRun": "All", "fieldValidation": "Strict"},
        json=new,
    )
    assert answer.status_code in (200, 400, 422), answer.text
    before = write_manifest(tmp_path / "old.yaml", old)
    after = write_manifest(tmp_path / "new.yaml", new)
    code = pht(["validate", "--old", str(before), str(after)])
    out = capsys.readouterr().out
    assert (answer.status_code == 200) == valid, answer.text
    assert (code == 0) == valid, out
