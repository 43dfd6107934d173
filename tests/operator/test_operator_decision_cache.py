"""The operator judges a spec against a policy once: repeated passes reuse the decision, and
any edit of the spec or the policy is judged afresh (a cached admission never outlives it)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pht_contract.conditions import Reason
from pht_contract.evaluation import evaluate
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_operator import decisions

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "3f1c" * 16


def train_spec(**changes: Any) -> TrainSpec:
    body = yaml.safe_load((REPO / "examples/trains/kaplan-meier.yaml").read_text())["spec"]
    body["image"] = f"ghcr.io/pht-station/trains/kaplan-meier:0.1.0@{DIGEST}"
    body.update(changes)
    return TrainSpec.model_validate(body)


def policy_body(uid: str = "p-1", version: str = "7") -> dict[str, Any]:
    body = yaml.safe_load((REPO / "examples/policies/station-policy.yaml").read_text())
    body["metadata"] = {"name": "station-policy", "uid": uid, "resourceVersion": version}
    return dict(body)


@pytest.fixture(autouse=True)
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]

    def counting(spec: TrainSpec, policy: StationPolicySpec) -> Any:
        calls[0] += 1
        return evaluate(spec, policy)

    monkeypatch.setattr(decisions, "evaluate", counting)
    monkeypatch.setattr(decisions, "_decisions", decisions._Bounded(decisions.DECISIONS_KEPT))
    monkeypatch.setattr(decisions, "_policies", decisions._Bounded(decisions.POLICIES_KEPT))
    monkeypatch.setattr(decisions, "_specs", decisions._Bounded(decisions.SPECS_KEPT))
    monkeypatch.setattr(
        decisions, "_digests", decisions._Bounded(decisions.SPECS_KEPT + decisions.POLICIES_KEPT)
    )
    return calls


def test_the_same_spec_and_policy_are_judged_once(counted: list[int]) -> None:
    policy = decisions.parse_policy(policy_body())
    first = decisions.decide(train_spec(), policy)
    again = decisions.decide(train_spec(), decisions.parse_policy(policy_body()))
    assert first.admitted, first.violations
    assert again == first
    assert counted == [1]


def test_an_edited_query_is_judged_again_and_refused(counted: list[int]) -> None:
    policy = decisions.parse_policy(policy_body())
    spec = train_spec()
    assert decisions.decide(spec, policy).admitted
    wire = spec.wire()
    sparql = wire["queries"][0]["sparql"]
    wire["queries"][0]["sparql"] = sparql.replace("{", "{ GRAPH <urn:pht:graph:other> {", 1) + "}"
    edited = TrainSpec.model_validate(wire)
    refused = decisions.decide(edited, policy)
    assert counted == [2]
    assert not refused.admitted
    assert refused.reason == Reason.GRAPH_NOT_ALLOWED, refused.violations


def test_a_tightened_policy_is_applied_to_a_spec_it_admitted_before(counted: list[int]) -> None:
    spec = train_spec()
    assert decisions.decide(spec, decisions.parse_policy(policy_body())).admitted
    tightened = policy_body(version="8")
    tightened["spec"]["organisations"] = ["nobody-we-know"]
    refused = decisions.decide(spec, decisions.parse_policy(tightened))
    assert not refused.admitted
    assert refused.reason == Reason.UNKNOWN_ORGANISATION
    assert counted == [2]


def test_a_policy_is_parsed_once_per_version_and_an_invalid_one_is_never_kept() -> None:
    assert decisions.parse_policy(policy_body()) is decisions.parse_policy(policy_body())
    newer = policy_body(version="8")
    assert decisions.parse_policy(newer) is not decisions.parse_policy(policy_body())
    broken = policy_body(version="9")
    broken["spec"]["organisations"] = "not a list"
    for _ in range(2):
        with pytest.raises(ValidationError):
            decisions.parse_policy(copy.deepcopy(broken))


def test_the_cache_stays_bounded(counted: list[int]) -> None:
    policy = decisions.parse_policy(policy_body())
    for seconds in range(60, 60 + decisions.DECISIONS_KEPT + 20):
        decisions.decide(train_spec(timeoutSeconds=seconds), policy)
    assert len(decisions._decisions) == decisions.DECISIONS_KEPT
    decisions.decide(train_spec(timeoutSeconds=60), policy)  # the oldest was forgotten
    assert counted == [decisions.DECISIONS_KEPT + 21]


def raw_spec(**changes: Any) -> dict[str, Any]:
    return train_spec(**changes).wire()


def test_a_spec_is_parsed_once_per_content_and_an_invalid_one_is_never_kept() -> None:
    first = decisions.parse_train_spec(raw_spec())
    assert decisions.parse_train_spec(raw_spec()) is first
    edited = decisions.parse_train_spec(raw_spec(timeoutSeconds=61))
    assert edited is not first
    assert edited.timeout_seconds == 61
    broken = raw_spec()
    broken["timeoutSeconds"] = 0  # at least 1
    for _ in range(2):
        with pytest.raises(ValidationError):
            decisions.parse_train_spec(copy.deepcopy(broken))
    assert len(decisions._specs) == 2


def test_parsed_specs_share_one_decision_and_an_edit_is_judged_again(counted: list[int]) -> None:
    policy = decisions.parse_policy(policy_body())
    spec = decisions.parse_train_spec(raw_spec())
    assert decisions.decide(spec, policy).admitted
    assert decisions.decide(decisions.parse_train_spec(raw_spec()), policy).admitted
    assert counted == [1]
    wire = raw_spec()
    wire["queries"][0]["sparql"] = (
        wire["queries"][0]["sparql"].replace("{", "{ GRAPH <urn:pht:graph:other> {", 1) + "}"
    )
    refused = decisions.decide(decisions.parse_train_spec(wire), policy)
    assert counted == [2]
    assert refused.reason == Reason.GRAPH_NOT_ALLOWED


def test_the_spec_cache_stays_bounded() -> None:
    for seconds in range(60, 60 + decisions.SPECS_KEPT + 5):
        decisions.parse_train_spec(raw_spec(timeoutSeconds=seconds))
    assert len(decisions._specs) == decisions.SPECS_KEPT
