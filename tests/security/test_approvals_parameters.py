"""The requester as attacker against a standing approval's parameter bounds and scope.

A standing approval covers Trains no steward looks at, so the checker must refuse every
spelling of "outside the bounds": undeclared keys, wrong JSON types, NaN and Infinity (which
compare false with every bound), repeated keys (parsers disagree on which wins), numbers
beyond a float, and a Train that names no queries (it could then send any query).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from security_approvals_kit import REQUESTED_BY, km_standing, train_body

from pht_contract.approvals import ParameterBound, StandingScope
from pht_contract.conditions import Reason
from pht_contract.parameters import ParameterRefusal, check_parameters
from pht_contract.sparql import query_hash
from pht_contract.trains import TrainSpec
from pht_operator import approvals

FEDERATED = [
    ParameterBound(name="ageCentre", type="number", required=True, enum=["70"]),
    ParameterBound(name="ageScale", type="number", minimum=5, maximum=20),
    ParameterBound(
        name="coefficients",
        type="object",
        items="number",
        keys=["intercept", "age"],
        maxItems=2,
        minimum=-20,
        maximum=20,
    ),
    ParameterBound(name="features", type="array", items="string", maxItems=3, enum=["age"]),
    ParameterBound(name="rounds", type="integer", minimum=1, maximum=10),
    ParameterBound(name="label", type="string", maxLength=8),
    ParameterBound(name="verbose", type="boolean"),
]


def test_parameters_inside_the_bounds_pass() -> None:
    check_parameters(
        '{"ageCentre": 70, "ageScale": 10.5, "coefficients": {"intercept": -1.5, "age": 0.2},'
        ' "features": ["age"], "rounds": 3, "label": "r1", "verbose": false}',
        FEDERATED,
    )
    check_parameters('{"ageCentre": 70.0}', FEDERATED)


@pytest.mark.parametrize(
    ("parameters", "names"),
    [
        ('{"ageCentre": 70, "exfiltrate": true}', "exfiltrate"),
        ('{"ageCentre": 61}', "ageCentre"),
        ('{"ageCentre": "70"}', "ageCentre"),
        ('{"ageCentre": 70, "ageScale": 0.001}', "ageScale"),
        ('{"ageCentre": 70, "ageScale": NaN}', "NaN"),
        ('{"ageCentre": 70, "ageScale": Infinity}', "Infinity"),
        ('{"ageCentre": 70, "ageScale": 1e999}', "ageScale"),
        ('{"ageCentre": 70, "ageScale": 10, "ageScale": 0.001}', "ageScale"),
        ('{"ageCentre": 70, "coefficients": {"intercept": 1, "sex": 9}}', "sex"),
        ('{"ageCentre": 70, "coefficients": {"age": 21}}', "coefficients.age"),
        ('{"ageCentre": 70, "coefficients": {"age": {"nested": 1}}}', "coefficients.age"),
        ('{"ageCentre": 70, "coefficients": [1, 2]}', "coefficients"),
        ('{"ageCentre": 70, "features": ["age", "age", "age", "age"]}', "features"),
        ('{"ageCentre": 70, "features": ["patientId"]}', "features[0]"),
        ('{"ageCentre": 70, "rounds": true}', "rounds"),
        ('{"ageCentre": 70, "rounds": 2.5}', "rounds"),
        ('{"ageCentre": 70, "rounds": ' + "9" * 400 + "}", "rounds"),
        ('{"ageCentre": 70, "label": "a-very-long-label"}', "label"),
        ('{"ageCentre": 70, "verbose": 1}', "verbose"),
        ("{}", "ageCentre"),
        ('{"ageCentre": 70, "a": ' + "[" * 5000 + "]" * 5000 + "}", "JSON"),
    ],
)
def test_parameters_outside_the_bounds_are_refused(parameters: str, names: str) -> None:
    with pytest.raises(ParameterRefusal) as refused:
        check_parameters(parameters, FEDERATED)
    assert names in str(refused.value) or names == "JSON"


def test_a_refusal_names_the_bound_not_the_value() -> None:
    with pytest.raises(ParameterRefusal) as refused:
        check_parameters('{"ageCentre": 70, "label": "Jane Doe, 1957-03-02"}', FEDERATED)
    assert "Jane" not in str(refused.value)


def test_without_declared_parameters_a_standing_approval_allows_none() -> None:
    check_parameters(None, [])
    check_parameters("{}", [])
    with pytest.raises(ParameterRefusal, match="not covered"):
        check_parameters('{"ageCentre": 40}', [])


def test_a_standing_approval_must_name_the_requesters_it_covers() -> None:
    body = km_standing()["spec"]["standing"]
    StandingScope.model_validate(body)
    for broken in (
        {**body, "requesters": []},
        {k: v for k, v in body.items() if k != "requesters"},
    ):
        with pytest.raises(ValueError, match="requesters"):
            StandingScope.model_validate(broken)


def _decide(spec: dict[str, Any], standing: dict[str, Any], creator: str | None) -> Any:
    train = TrainSpec.model_validate(spec)
    hashes = tuple(query_hash(q.sparql) for q in train.queries or [])
    return approvals.decide(
        train_name="t",
        train_uid="u",
        spec=train,
        spec_hash="a" * 64,
        query_hashes=hashes,
        required=1,
        requester=approvals.requester_identities(train, {}),
        approvals=[{"apiVersion": "x", "kind": "TrainApproval", **standing}],
        now=datetime.datetime.now(datetime.UTC),
        creator=creator,
    )


def test_the_covered_train_is_approved_and_each_change_of_scope_is_not() -> None:
    spec = train_body("t")["spec"]
    standing = km_standing()
    assert _decide(spec, standing, REQUESTED_BY).reason == Reason.STANDING_APPROVAL
    graphs_only = {k: v for k, v in spec.items() if k != "queries"}
    graphs_only["graphs"] = ["urn:pht:graph:lung1"]
    for changed, creator in (
        (spec, "oidc:mallory"),
        (spec, None),
        ({**spec, "command": ["python", "-c", "print(open('/etc/passwd').read())"]}, REQUESTED_BY),
        ({**spec, "args": ["--dump-rows"]}, REQUESTED_BY),
        ({**spec, "image": spec["image"].split("@")[0] + "@sha256:" + "1" * 64}, REQUESTED_BY),
        (graphs_only, REQUESTED_BY),
        ({**spec, "graphs": ["urn:pht:graph:lung1"]}, REQUESTED_BY),
        ({**spec, "inputArtifact": {"sha256": "e" * 64}}, REQUESTED_BY),
    ):
        verdict = _decide(changed, standing, creator)
        assert not verdict.approved, changed
        assert verdict.reason == Reason.AWAITING_APPROVAL
    outside = {**spec, "parameters": '{"timePoints": [1], "groupBy": "patientId"}'}
    verdict = _decide(outside, standing, REQUESTED_BY)
    assert verdict.reason == Reason.PARAMETERS_OUTSIDE_APPROVAL
    assert "groupBy" in verdict.message


def test_a_listed_input_artifact_and_the_exact_graphs_stay_covered() -> None:
    spec = {
        **train_body("t")["spec"],
        "inputArtifact": {"sha256": "e" * 64},
        "graphs": ["urn:pht:graph:lung1"],
    }
    standing = km_standing(inputArtifacts=["e" * 64], graphs=["urn:pht:graph:lung1"])
    assert _decide(spec, standing, REQUESTED_BY).reason == Reason.STANDING_APPROVAL


@pytest.mark.parametrize("digits", [309, 400, 4000])
def test_a_number_too_large_for_a_double_is_refused_not_a_crash(digits: int) -> None:
    """A 400-digit integer once raised OverflowError out of the check (a reconcile crash)."""
    with pytest.raises(ParameterRefusal) as refused:
        check_parameters('{"ageCentre": 70, "ageScale": 1' + "0" * digits + "}", FEDERATED)
    assert "ageScale" in str(refused.value)
