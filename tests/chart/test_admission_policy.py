"""The ValidatingAdmissionPolicy on TrainApprovals, evaluated offline with cel-python exactly as
rendered: the API server would run these CEL expressions on every approval a steward creates."""

from typing import Any

import pytest

from .admission import failures, policy
from .rendering import documents, one, render_profile

STEWARD = "steward@maastro.example"


def _policy() -> dict[str, Any]:
    return policy("-approvals")


def _approval(approver: str) -> dict[str, Any]:
    return {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "km-steward-1", "namespace": "pht-requests"},
        "spec": {
            "train": {"name": "km", "specHash": "a" * 64},
            "decision": "Approve",
            "approver": approver,
        },
    }


def _request(username: str) -> dict[str, Any]:
    return {"operation": "CREATE", "userInfo": {"username": username, "groups": ["stewards"]}}


def _failures(approval: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """The messages the API server would return (empty: admitted)."""
    return failures(_policy(), request, approval)


def test_a_steward_approving_in_their_own_name_is_admitted() -> None:
    assert _failures(_approval(STEWARD), _request(STEWARD)) == []


def test_approving_in_someone_elses_name_is_refused() -> None:
    messages = _failures(_approval("other-steward@umcg.example"), _request(STEWARD))
    assert messages == [
        f"spec.approver must be your own username ({STEWARD}); "
        "you cannot approve in someone else's name"
    ]


@pytest.mark.parametrize(
    "username", ["system:serviceaccount:pht-system:station-pht-station-operator", "system:admin"]
)
def test_service_accounts_cannot_approve_even_in_their_own_name(username: str) -> None:
    messages = _failures(_approval(username), _request(username))
    assert messages == [
        "service accounts and system identities cannot approve trains; a data steward must"
    ]


def test_policy_covers_creation_of_approvals_in_station_namespaces_only() -> None:
    docs = documents(render_profile("gpu-kueue"))
    approvals = policy("-approvals", "gpu-kueue")
    (rule,) = approvals["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["trainapprovals"] and rule["operations"] == ["CREATE"]
    assert approvals["spec"]["failurePolicy"] == "Fail"
    binding = one(docs, "ValidatingAdmissionPolicyBinding", approvals["metadata"]["name"])
    assert binding["spec"]["policyName"] == approvals["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector["key"] == "kubernetes.io/metadata.name"
    assert set(selector["values"]) == {"pht-requests", "pht-federated"}
