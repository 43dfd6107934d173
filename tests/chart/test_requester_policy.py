"""The ValidatingAdmissionPolicy that records who asked for a Train, evaluated offline with
cel-python exactly as rendered. The operator ignores an approval by the Train's creator, so this
annotation is what stops a researcher who also holds the steward role from approving their own
Train: it must be the creator's own username and can never change afterwards."""

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pht_contract.validation import validate_object

from .admission import failures, policy
from .rendering import ROOT, documents, find, helm_template, one, render_profile

ANNOTATION = "pht.health-ai.nl/requested-by"
RESEARCHER = "researcher@radboudumc.example"
INSTALL = ROOT / "docs" / "install.md"


def _policy() -> dict[str, Any]:
    return policy("-train-requesters")


def _train(requested_by: str | None) -> dict[str, Any]:
    """A real example Train, with or without the annotation."""
    path = ROOT / "examples" / "trains" / "cohort-summary.yaml"
    train: dict[str, Any] = yaml.safe_load(path.read_text())
    train["metadata"].pop("annotations", None)
    if requested_by is not None:
        train["metadata"]["annotations"] = {ANNOTATION: requested_by}
    return train


def _request(operation: str, username: str) -> dict[str, Any]:
    return {"operation": operation, "userInfo": {"username": username, "groups": ["researchers"]}}


def _create(train: dict[str, Any], username: str = RESEARCHER) -> list[str]:
    return failures(_policy(), _request("CREATE", username), train)


def _update(old: dict[str, Any], new: dict[str, Any], username: str = RESEARCHER) -> list[str]:
    return failures(_policy(), _request("UPDATE", username), new, old)


def _missing_message(username: str) -> str:
    return (
        f'a Train must record who creates it: add the annotation {ANNOTATION}: "{username}" '
        "(your own username) to its metadata.annotations"
    )


IMMUTABLE = (
    f"the annotation {ANNOTATION} records who created the Train: "
    "it cannot be added, changed or removed afterwards"
)


def test_a_train_annotated_with_its_creator_is_admitted() -> None:
    assert _create(_train(RESEARCHER)) == []


def test_a_train_without_the_annotation_is_refused_with_the_line_to_add() -> None:
    assert _create(_train(None)) == [_missing_message(RESEARCHER)]


def test_other_annotations_alone_do_not_count() -> None:
    train = _train(None)
    train["metadata"]["annotations"] = {"team": "epidemiology"}
    assert _create(train) == [_missing_message(RESEARCHER)]


@pytest.mark.parametrize("claimed", ["steward@maastro.example", "", RESEARCHER.upper()])
def test_a_train_claiming_someone_elses_name_is_refused(claimed: str) -> None:
    assert _create(_train(claimed)) == [_missing_message(RESEARCHER)]


def test_updates_that_keep_the_annotation_are_admitted() -> None:
    old = _train(RESEARCHER)
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["pht.health-ai.nl/cleanup"]
    new["metadata"]["annotations"]["kopf.zalando.org/last-handled-configuration"] = "{}"
    # Whoever updates (the operator, a steward): only the annotation's value matters.
    assert _update(old, new, "system:serviceaccount:pht-system:station-pht-station-operator") == []


def test_a_train_created_before_the_policy_may_still_be_updated_without_it() -> None:
    assert _update(_train(None), _train(None)) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (RESEARCHER, "steward@maastro.example"),  # changed
        (RESEARCHER, None),  # removed
        (None, "steward@maastro.example"),  # added later, e.g. to a Train that predates it
        (None, RESEARCHER),  # added later, even in one's own name
    ],
)
def test_the_annotation_cannot_be_changed_added_or_removed(
    old: str | None, new: str | None
) -> None:
    assert _update(_train(old), _train(new)) == [IMMUTABLE]


def test_policy_covers_creation_and_updates_of_trains_in_station_namespaces() -> None:
    docs = documents(render_profile("gpu-kueue"))
    requesters = policy("-train-requesters", "gpu-kueue")
    (rule,) = requesters["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["pht.health-ai.nl"] and rule["resources"] == ["trains"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert requesters["spec"]["failurePolicy"] == "Fail"
    binding = one(docs, "ValidatingAdmissionPolicyBinding", requesters["metadata"]["name"])
    assert binding["spec"]["policyName"] == requesters["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector["key"] == "kubernetes.io/metadata.name"
    assert set(selector["values"]) == {"pht-requests", "pht-federated"}


def test_policy_is_gated_like_the_approval_policy() -> None:
    result = helm_template(sets={"admissionPolicy.enabled": "false"})
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    assert not find(docs, "ValidatingAdmissionPolicy")
    assert not find(docs, "ValidatingAdmissionPolicyBinding")


MUTATING_KINDS = ("MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding")


def test_the_api_server_sets_the_annotation_on_creation_where_it_can() -> None:
    """Where the cluster serves MutatingAdmissionPolicy the chart sets the annotation to the
    creating user's username on CREATE, in the station namespaces only (the real API server's
    behaviour is tested in tests/realcluster/test_realcluster_chart.py)."""
    docs = documents(render_profile("gpu-kueue"))
    mutating = one(docs, "MutatingAdmissionPolicy")
    spec = mutating["spec"]
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["pht.health-ai.nl"] and rule["resources"] == ["trains"]
    assert rule["operations"] == ["CREATE"]
    assert spec["failurePolicy"] == "Fail"
    (mutation,) = spec["mutations"]
    assert mutation["patchType"] == "ApplyConfiguration"
    expression = " ".join(mutation["applyConfiguration"]["expression"].split())
    assert expression == (
        "Object{metadata: Object.metadata{annotations: "
        f"{{'{ANNOTATION}': request.userInfo.username}}}}}}"
    )
    binding = one(docs, "MutatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == mutating["metadata"]["name"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert (selector["key"], selector["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert set(selector["values"]) == {"pht-requests", "pht-federated"}


@pytest.mark.parametrize(
    ("sets", "api_versions"),
    [
        ({}, ()),  # an API server without MutatingAdmissionPolicy
        ({"admissionPolicy.setRequestedBy": "false"}, None),
        ({"admissionPolicy.enabled": "false"}, None),
    ],
)
def test_the_mutating_policy_is_left_out(
    sets: dict[str, str], api_versions: tuple[str, ...] | None
) -> None:
    if api_versions is None:
        result = helm_template(sets=sets)
    else:
        result = helm_template(sets=sets, api_versions=api_versions)
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    assert not [d for d in docs if d["kind"] in MUTATING_KINDS]
    # The validating policy does not depend on the mutating one.
    assert bool(find(docs, "ValidatingAdmissionPolicy")) == (
        sets != {"admissionPolicy.enabled": "false"}
    )


def test_rendered_policy_is_strictly_valid_and_a_typo_is_caught() -> None:
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(_policy(), version, strict=True)
    for doc in documents(render_profile("default")):
        if doc["kind"] in MUTATING_KINDS:
            kubernetes_validate.validate(doc, version, strict=True)
    broken = copy.deepcopy(_policy())
    broken["spec"]["variable"] = broken["spec"].pop("variables")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def _documented_yaml() -> list[Any]:
    blocks = re.findall(r"```yaml\n(.*?)```", INSTALL.read_text(), flags=re.S)
    return [yaml.safe_load(block) for block in blocks]


def test_the_install_guides_train_is_valid_and_leaves_the_annotation_to_the_cluster() -> None:
    (train,) = [d for d in _documented_yaml() if isinstance(d, dict) and d.get("kind") == "Train"]
    assert ANNOTATION not in train["metadata"].get("annotations", {})
    assert validate_object(train) == [], [str(p) for p in validate_object(train)]
    # Without the mutating policy, the validating one names the line to add.
    assert _create(train, "epi@radboudumc.example") == [_missing_message("epi@radboudumc.example")]


def test_the_guides_annotation_for_older_clusters_passes_for_its_user_only() -> None:
    """The snippet for API servers without MutatingAdmissionPolicy, added to the guide's Train,
    is admitted for the user it names, and only for them."""
    (train,) = [d for d in _documented_yaml() if isinstance(d, dict) and d.get("kind") == "Train"]
    (snippet,) = [d for d in _documented_yaml() if isinstance(d, dict) and set(d) == {"metadata"}]
    annotated = copy.deepcopy(train)
    annotated["metadata"]["annotations"] = snippet["metadata"]["annotations"]
    username = annotated["metadata"]["annotations"][ANNOTATION]
    assert _create(annotated, username) == []
    assert _create(annotated, "someone-else@umcg.example") == [
        _missing_message("someone-else@umcg.example")
    ]
