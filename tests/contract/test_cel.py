"""Each CEL rule of the CRDs, evaluated offline both ways (it must pass and it must fail)."""

import copy
from typing import Any

import pytest

from pht_contract.cel import check, evaluate_rule
from pht_contract.crds import all_crds


def _schema(kind: str) -> dict[str, Any]:
    for crd in all_crds().values():
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]
    raise KeyError(kind)


def _rules(schema: dict[str, Any]) -> list[str]:
    found = [r["rule"] for r in schema.get("x-kubernetes-validations", [])]
    for child in (schema.get("properties") or {}).values():
        found += _rules(child)
    if "items" in schema:
        found += _rules(schema["items"])
    return found


def test_every_rule_is_exercised_here() -> None:
    rules = [
        rule
        for kind in ("Train", "StationPolicy", "TrainApproval")
        for rule in _rules(_schema(kind))
    ]
    assert len(rules) == 12, rules


def test_train_needs_queries_or_graphs(km_train: dict[str, Any]) -> None:
    schema = _schema("Train")
    assert check(schema, km_train) == []
    bare = copy.deepcopy(km_train)
    del bare["spec"]["queries"]
    failures = check(schema, bare)
    assert [f.path for f in failures] == ["spec"]
    bare["spec"]["graphs"] = ["urn:pht:graph:lung1"]
    assert check(schema, bare) == []


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        (lambda s: s.update(suspend=True), True),
        (lambda s: None, True),
        (lambda s: s.update(image=s["image"].replace("0.1.0", "0.1.1")), False),
        (lambda s: s.update(timeoutSeconds=601), False),
        (lambda s: s.pop("timeoutSeconds"), False),
        (lambda s: s.update(args=["--fast"]), False),
        (lambda s: s["queries"][0].update(sparql="SELECT * WHERE { ?s ?p ?o }"), False),
        (lambda s: s["requester"].update(organisation="nki"), False),
    ],
)
def test_train_spec_is_immutable_except_suspend(
    km_train: dict[str, Any], change: Any, allowed: bool
) -> None:
    new = copy.deepcopy(km_train)
    change(new["spec"])
    failures = check(_schema("Train"), new, km_train)
    assert (failures == []) is allowed, failures


def test_policy_name_is_fixed(example_policy: dict[str, Any]) -> None:
    schema = _schema("StationPolicy")
    assert check(schema, example_policy) == []
    renamed = copy.deepcopy(example_policy)
    renamed["metadata"]["name"] = "other"
    assert [f.path for f in check(schema, renamed)] == ["<root>"]


def test_approval_scope_and_immutability() -> None:
    spec = {"train": {"name": "km", "specHash": "a" * 64}, "approver": "s", "decision": "Approve"}
    obj = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "a"},
        "spec": spec,
    }
    schema = _schema("TrainApproval")
    assert check(schema, obj) == []
    both = copy.deepcopy(obj)
    both["spec"]["standing"] = {
        "imageDigest": "sha256:" + "b" * 64,
        "maxRuns": 1,
        "expiresAt": "2027-01-01T00:00:00Z",
    }
    assert [f.path for f in check(schema, both)] == ["spec"]
    neither = copy.deepcopy(obj)
    del neither["spec"]["train"]
    assert [f.path for f in check(schema, neither)] == ["spec"]
    changed = copy.deepcopy(obj)
    changed["spec"]["approver"] = "someone-else"
    assert [f.path for f in check(schema, changed, obj)] == ["spec"]
    assert check(schema, obj, obj) == []


@pytest.mark.parametrize(
    ("bound", "allowed"),
    [
        ({"name": "age", "type": "number", "minimum": 40}, True),
        ({"name": "xs", "type": "array", "items": "number"}, True),
        ({"name": "coefs", "type": "object", "items": "number"}, True),
        ({"name": "xs", "type": "array"}, False),
        ({"name": "age", "type": "number", "items": "number"}, False),
        ({"name": "age", "type": "number", "minimum": 40, "maximum": 40.0}, True),
        ({"name": "age", "type": "number", "minimum": 40, "maximum": 39.5}, False),
    ],
)
def test_a_parameter_bound_names_an_element_type_exactly_for_arrays_and_objects(
    bound: dict[str, Any], allowed: bool
) -> None:
    obj = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "a"},
        "spec": {
            "standing": {
                "imageDigest": "sha256:" + "b" * 64,
                "queryHashes": ["c" * 64],
                "requesters": ["oidc:alice"],
                "parameters": [bound],
                "maxRuns": 1,
                "expiresAt": "2027-01-01T00:00:00Z",
            },
            "approver": "s",
        },
    }
    failures = check(_schema("TrainApproval"), obj)
    assert (failures == []) is allowed, failures
    if not allowed:
        assert [f.path for f in failures] == ["spec.standing.parameters[0]"]


@pytest.mark.parametrize(
    ("variable", "allowed"),
    [
        ({"name": "stage", "values": ["I", "II"]}, True),
        ({"name": "days", "minimum": 0, "maximum": 36525}, True),
        ({"name": "days", "minimum": 0.5, "maximum": 1}, True),
        ({"name": "days", "minimum": 0}, False),
        ({"name": "days", "maximum": 10}, False),
        ({"name": "days", "minimum": 10, "maximum": 1}, False),
    ],
)
def test_a_releasable_numeric_range_is_closed_and_ordered(
    example_policy: dict[str, Any], variable: dict[str, Any], allowed: bool
) -> None:
    policy = copy.deepcopy(example_policy)
    policy["spec"]["disclosure"]["releasableVariables"] = [variable]
    failures = check(_schema("StationPolicy"), policy)
    assert (failures == []) is allowed, failures
    if not allowed:
        assert [f.path for f in failures] == ["spec.disclosure.releasableVariables[0]"]


def test_rule_evaluation_is_real() -> None:
    assert evaluate_rule("self.a == 1", {"a": 1}) is True
    assert evaluate_rule("self.a == 1", {"a": 2}) is False


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({}, None),
        ({"expiresAt": "2027-01-11T09:00:00Z"}, None),  # 366 days: the longest a review counts
        ({"expiresAt": "2027-01-11T09:00:01Z"}, "spec.disclosure.reviewedImages[0]"),
        ({"expiresAt": "2026-01-10T09:00:00Z"}, "spec.disclosure.reviewedImages[0]"),
        ({"expiresAt": "2025-12-31T09:00:00Z"}, "spec.disclosure.reviewedImages[0]"),
        ({"notes": None}, "spec.disclosure.reviewedImages[0]"),
        ({"notes": None, "link": "https://git.example.org/km/-/merge_requests/7"}, None),
    ],
)
def test_an_image_review_is_dated_bounded_and_explained(
    example_policy: dict[str, Any], change: dict[str, Any], path: str | None
) -> None:
    review = {
        "digest": "sha256:" + "a" * 64,
        "reviewer": "steward@station.local",
        "reviewedAt": "2026-01-10T09:00:00Z",
        "expiresAt": "2026-07-10T09:00:00Z",
        "notes": "counts by stage only",
        **change,
    }
    policy = copy.deepcopy(example_policy)
    policy["spec"]["disclosure"]["reviewedImages"] = [
        {k: v for k, v in review.items() if v is not None}
    ]
    failures = check(_schema("StationPolicy"), policy)
    assert [f.path for f in failures] == ([] if path is None else [path]), failures
