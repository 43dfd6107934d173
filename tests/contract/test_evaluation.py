"""Pure policy evaluation: each refusal has its reason and field path; capacity only waits."""

import copy
from typing import Any

import pytest

from pht_contract.conditions import Reason
from pht_contract.evaluation import evaluate, has_capacity, required_approvers
from pht_contract.policies import StationPolicy, StationPolicySpec
from pht_contract.sparql import query_hash
from pht_contract.trains import Train, TrainSpec


def _spec(train: dict[str, Any], **changes: Any) -> TrainSpec:
    data = copy.deepcopy(train["spec"])
    data.update(changes)
    return Train.model_validate({**train, "spec": data}).spec


@pytest.fixture
def policy(example_policy: dict[str, Any]) -> StationPolicySpec:
    return StationPolicy.model_validate(example_policy).spec


def test_good_train_is_admitted_with_its_query_hashes(
    km_train: dict[str, Any], policy: StationPolicySpec
) -> None:
    decision = evaluate(_spec(km_train), policy)
    assert decision.admitted, decision.message
    assert decision.requires_approval
    assert decision.approved_query_hashes == (query_hash(km_train["spec"]["queries"][0]["sparql"]),)
    assert decision.timeout_seconds == 600


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        (
            {"image": "docker.io/library/python:3.12@sha256:" + "a" * 64},
            Reason.IMAGE_NOT_ALLOWED,
            "spec.image",
        ),
        (
            {"image": "ghcr.io/someone/else:1@sha256:" + "a" * 64},
            Reason.IMAGE_NOT_ALLOWED,
            "spec.image",
        ),
        (
            {"image": "ghcr.io/pht-station/trains/kaplan-meier:0.1.0"},
            Reason.DIGEST_REQUIRED,
            "spec.image",
        ),
        ({"resources": {"gpu": 3}}, Reason.EXCEEDS_GPU_LIMIT, "spec.resources.gpu"),
        ({"resources": {"cpu": "9"}}, Reason.EXCEEDS_CPU_LIMIT, "spec.resources.cpu"),
        ({"resources": {"memory": "33Gi"}}, Reason.EXCEEDS_MEMORY_LIMIT, "spec.resources.memory"),
        (
            {"resources": {"gpu": 1, "gpuModel": "GeForce-GTX-1080"}},
            Reason.GPU_MODEL_NOT_ALLOWED,
            "spec.resources.gpuModel",
        ),
        ({"timeoutSeconds": 50000}, Reason.TIMEOUT_TOO_LONG, "spec.timeoutSeconds"),
        (
            {"requester": {"name": "x", "organisation": "acme", "contact": "x@acme.example"}},
            Reason.UNKNOWN_ORGANISATION,
            "spec.requester.organisation",
        ),
        ({"graphs": ["urn:pht:graph:other"]}, Reason.GRAPH_NOT_ALLOWED, "spec.graphs[0]"),
        (
            {"queries": [{"name": "q", "sparql": "DELETE WHERE { ?s ?p ?o }"}]},
            Reason.QUERY_NOT_ALLOWED,
            "spec.queries[0].sparql",
        ),
        (
            {"queries": [{"name": "q", "sparql": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"}]},
            Reason.QUERY_NOT_ALLOWED,
            "spec.queries[0].sparql",
        ),
        (
            {"queries": [{"name": "q", "sparql": "SELECT * FROM <urn:x> WHERE { ?s ?p ?o }"}]},
            Reason.GRAPH_NOT_ALLOWED,
            "spec.queries[0].sparql",
        ),
        (
            {"queries": [{"name": "q", "sparql": "SELECT * WHERE { ?s ?p }"}]},
            Reason.INVALID_QUERY,
            "spec.queries[0].sparql",
        ),
        (
            {"queries": None, "graphs": ["urn:pht:graph:lung1"]},
            Reason.QUERIES_REQUIRED,
            "spec.queries",
        ),
    ],
)
def test_each_refusal_names_reason_and_field(
    km_train: dict[str, Any],
    policy: StationPolicySpec,
    changes: dict[str, Any],
    reason: Reason,
    field: str,
) -> None:
    decision = evaluate(_spec(km_train, **changes), policy)
    assert not decision.admitted
    assert (reason, field) in [(v.reason, v.field) for v in decision.violations], (
        decision.violations
    )


def test_limits_are_named_in_the_message(
    km_train: dict[str, Any], policy: StationPolicySpec
) -> None:
    decision = evaluate(_spec(km_train, resources={"gpu": 3}), policy)
    assert "maxGpus of 2" in decision.message


def test_any_read_only_query_mode_allows_graph_only_trains(
    km_train: dict[str, Any], policy: StationPolicySpec
) -> None:
    open_policy = policy.model_copy(deep=True)
    open_policy.data_access.query_mode = "AnyReadOnlyQuery"
    assert evaluate(
        _spec(km_train, queries=None, graphs=["urn:pht:graph:lung1"]), open_policy
    ).admitted


def test_digest_is_required_whenever_approval_is(
    km_train: dict[str, Any], policy: StationPolicySpec
) -> None:
    relaxed = policy.model_copy(deep=True)
    relaxed.images.require_digest = False
    tag_only = _spec(km_train, image="ghcr.io/pht-station/trains/kaplan-meier:0.1.0")
    assert [v.reason for v in evaluate(tag_only, relaxed).violations] == [Reason.DIGEST_REQUIRED]
    relaxed.approval.mode = "None"
    assert evaluate(tag_only, relaxed).admitted


def test_capacity_and_approvers(policy: StationPolicySpec) -> None:
    assert has_capacity(3, policy) and not has_capacity(4, policy)
    assert required_approvers(policy) == 1
