"""The ValidatingAdmissionPolicy on image reviews in StationPolicies, evaluated offline with
cel-python exactly as rendered: a review that is new or changed must name its writer."""

from typing import Any

import pytest

from .admission import failures, policy
from .rendering import documents, one, render_profile

STEWARD = "steward@maastro.example"
OTHER = "other-steward@umcg.example"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
REFUSAL = (
    f"spec.disclosure.reviewedImages: a review you add or change must name you as its reviewer "
    f"({STEWARD}); you cannot review in someone else's name"
)


def _review(digest: str, reviewer: str, notes: str = "read the code") -> dict[str, Any]:
    return {
        "digest": digest,
        "reviewer": reviewer,
        "reviewedAt": "2026-01-10T09:00:00Z",
        "expiresAt": "2026-07-10T09:00:00Z",
        "notes": notes,
    }


def _policy_object(*reviews: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "StationPolicy",
        "metadata": {"name": "station-policy", "namespace": "pht-requests"},
        "spec": {"organisations": ["maastro"], "disclosure": {"reviewedImages": list(reviews)}},
    }


def _request(username: str, operation: str = "UPDATE") -> dict[str, Any]:
    return {"operation": operation, "userInfo": {"username": username, "groups": ["stewards"]}}


def _failures(
    new: dict[str, Any], user: str = STEWARD, old: dict[str, Any] | None = None
) -> list[str]:
    operation = "CREATE" if old is None else "UPDATE"
    return failures(policy("-image-reviews"), _request(user, operation), new, old)


def test_a_steward_records_a_review_in_their_own_name() -> None:
    assert _failures(_policy_object(_review(DIGEST_A, STEWARD))) == []


def test_a_review_in_someone_elses_name_is_refused_on_create_and_update() -> None:
    forged = _policy_object(_review(DIGEST_A, OTHER))
    assert _failures(forged) == [REFUSAL]
    assert _failures(forged, old=_policy_object()) == [REFUSAL]


def test_reviews_left_as_they_were_pass_whoever_edits_the_policy() -> None:
    theirs = _review(DIGEST_A, OTHER)
    old = _policy_object(theirs)
    # Another steward adds their own review beside a colleague's, or removes the colleague's.
    assert _failures(_policy_object(theirs, _review(DIGEST_B, STEWARD)), old=old) == []
    assert _failures(_policy_object(), old=old) == []


@pytest.mark.parametrize(
    "change",
    [
        {"digest": DIGEST_B},
        {"expiresAt": "2026-12-31T09:00:00Z"},
        {"notes": "extended by someone else"},
    ],
)
def test_changing_someone_elses_review_is_refused(change: dict[str, str]) -> None:
    theirs = _review(DIGEST_A, OTHER)
    changed = {**theirs, **change}
    assert _failures(_policy_object(changed), old=_policy_object(theirs)) == [REFUSAL]


def test_a_policy_without_reviews_is_left_alone() -> None:
    bare = _policy_object()
    del bare["spec"]["disclosure"]
    assert _failures(bare) == []
    assert _failures(bare, user="system:serviceaccount:kube-system:helm", old=bare) == []


@pytest.mark.parametrize(
    "username", ["system:serviceaccount:pht-system:station-pht-station-operator", "system:admin"]
)
def test_service_accounts_cannot_review_even_in_their_own_name(username: str) -> None:
    messages = _failures(_policy_object(_review(DIGEST_A, username)), user=username)
    assert messages == [
        "service accounts and system identities cannot review train images; a data steward must"
    ]


def test_policy_covers_creation_and_updates_of_station_policies_in_station_namespaces() -> None:
    docs = documents(render_profile("gpu-kueue"))
    reviews = policy("-image-reviews", "gpu-kueue")
    (rule,) = reviews["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["stationpolicies"]
    assert rule["operations"] == ["CREATE", "UPDATE"]
    assert reviews["spec"]["failurePolicy"] == "Fail"
    binding = one(docs, "ValidatingAdmissionPolicyBinding", reviews["metadata"]["name"])
    assert binding["spec"]["policyName"] == reviews["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert set(selector["values"]) == {"pht-requests", "pht-federated"}


KEY_REFUSAL = (
    f"spec.disclosure.trustedReviewers: a key you add or change must name you in addedBy "
    f"({STEWARD}); you cannot trust a key in someone else's name"
)


def _key(name: str, added_by: str, pem: str = "-----BEGIN PUBLIC KEY-----\nA\n") -> dict[str, Any]:
    return {"name": name, "addedBy": added_by, "publicKey": pem + "-----END PUBLIC KEY-----\n"}


def _keys_object(*keys: dict[str, Any]) -> dict[str, Any]:
    body = _policy_object()
    body["spec"]["disclosure"] = {"trustedReviewers": list(keys)}
    return body


def test_a_steward_adds_a_reviewer_key_in_their_own_name() -> None:
    assert _failures(_keys_object(_key("board", STEWARD))) == []


def test_a_key_added_in_someone_elses_name_is_refused_on_create_and_update() -> None:
    forged = _keys_object(_key("board", OTHER))
    assert _failures(forged) == [KEY_REFUSAL]
    assert _failures(forged, old=_keys_object()) == [KEY_REFUSAL]


@pytest.mark.parametrize(
    "change",
    [{"publicKey": "-----BEGIN PUBLIC KEY-----\nB\n-----END PUBLIC KEY-----\n"}, {"name": "x"}],
    ids=["swapped-key", "renamed"],
)
def test_swapping_a_colleagues_key_under_their_name_is_refused(change: dict[str, str]) -> None:
    theirs = _key("board", OTHER)
    assert _failures(_keys_object({**theirs, **change}), old=_keys_object(theirs)) == [KEY_REFUSAL]
    assert (
        _failures(_keys_object({**theirs, **change, "addedBy": STEWARD}), old=_keys_object(theirs))
        == []
    )


def test_keys_left_as_they_were_pass_whoever_edits_the_policy() -> None:
    theirs = _key("board", OTHER)
    old = _keys_object(theirs)
    assert _failures(_keys_object(theirs, _key("registry", STEWARD, "x\n")), old=old) == []
    assert _failures(_keys_object(), old=old) == []


def test_service_accounts_cannot_add_a_reviewer_key_even_in_their_own_name() -> None:
    robot = "system:serviceaccount:pht-system:station-pht-station-operator"
    assert _failures(_keys_object(_key("board", robot)), user=robot) == [
        "service accounts and system identities cannot add reviewer keys; a data steward must"
    ]
