"""Image reviews in the StationPolicy, judged by a real API server with the chart installed: the
admission policy binds each new or changed review, and each reviewer key, to the steward who
writes it, the CRD bounds its digest and dates, and RBAC keeps researchers out of the policy
altogether."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from realcluster_kube import GROUP, REQUESTS_NS, wait_for
from signed_review_kit import new_key, public_pem

from pht_contract import constants
from pht_sandbox.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow

POLICY_URL = (
    f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/stationpolicies/"
    f"{constants.STATION_POLICY_NAME}"
)
MERGE = {"Content-Type": "application/merge-patch+json"}
#: No image the other tests run: a review of it releases nothing there.
DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32


def review(reviewer: str, digest: str = DIGEST_A, days: int = 90) -> dict[str, Any]:
    reviewed = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    return {
        "digest": digest,
        "reviewer": reviewer,
        "reviewedAt": reviewed.isoformat().replace("+00:00", "Z"),
        "expiresAt": (reviewed + timedelta(days=days)).isoformat().replace("+00:00", "Z"),
        "notes": f"read by {reviewer}",
    }


def set_reviews(client: httpx.Client, *reviews: dict[str, Any]) -> httpx.Response:
    patch = {"spec": {"disclosure": {"reviewedImages": list(reviews)}}}
    return client.patch(POLICY_URL, json=patch, headers=MERGE)


@pytest.fixture(scope="module")
def admission_in_effect(control_plane: ControlPlane, chart: Path) -> None:
    """The API server picks up a new admission policy a moment after `helm install`: wait
    until a review in someone else's name is refused."""

    def forgery_refused() -> bool:
        with control_plane.client("steward") as bob:
            return set_reviews(bob, review("dave")).status_code == 403

    wait_for(forgery_refused, timeout=60, every=1.0)


def set_keys(client: httpx.Client, *keys: dict[str, Any]) -> httpx.Response:
    patch = {"spec": {"disclosure": {"trustedReviewers": list(keys)}}}
    return client.patch(POLICY_URL, json=patch, headers=MERGE)


@pytest.fixture(autouse=True)
def no_reviews_left(control_plane: ControlPlane, admission_in_effect: None) -> Any:
    yield
    with control_plane.client() as admin:
        assert set_reviews(admin).status_code == 200
        assert set_keys(admin).status_code == 200


def test_a_steward_adds_a_reviewer_key_in_their_own_name_only(control_plane: ControlPlane) -> None:
    key = {"name": "Consortium review board", "publicKey": public_pem(new_key("ed25519"))}
    with control_plane.client("steward") as bob:
        mine = set_keys(bob, {**key, "addedBy": "bob"})
        forged = set_keys(bob, {**key, "addedBy": "dave"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["spec"]["disclosure"]["trustedReviewers"][0]["addedBy"] == "bob"
    assert forged.status_code == 403, forged.text
    assert "a key you add or change must name you in addedBy (bob)" in forged.json()["message"]


def test_a_steward_records_a_review_in_their_own_name_only(control_plane: ControlPlane) -> None:
    with control_plane.client("steward") as bob:
        mine = set_reviews(bob, review("bob"))
        forged = set_reviews(bob, review("dave"))
    assert mine.status_code == 200, mine.text
    assert mine.json()["spec"]["disclosure"]["reviewedImages"][0]["reviewer"] == "bob"
    assert forged.status_code == 403, forged.text
    assert (
        "a review you add or change must name you as its reviewer (bob)"
        in (forged.json()["message"])
    )


def test_a_colleague_keeps_a_review_but_cannot_change_it(control_plane: ControlPlane) -> None:
    bobs = review("bob")
    with control_plane.client("steward") as bob:
        assert set_reviews(bob, bobs).status_code == 200
    with control_plane.client("steward2") as dave:
        # adding a review of their own beside it, in their own name: admitted
        both = set_reviews(dave, bobs, review("dave", DIGEST_B))
        # extending bob's review while leaving bob's name on it: refused
        extended = set_reviews(dave, {**bobs, "expiresAt": review("bob", days=300)["expiresAt"]})
        # a review of digest A does not become one of digest B by editing it
        moved = set_reviews(dave, {**bobs, "digest": DIGEST_B})
    assert both.status_code == 200, both.text
    assert (extended.status_code, moved.status_code) == (403, 403)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"expiresAt": None, "days": 400}, "at most 366 days"),
        ({"digest": "sha256:abc"}, "spec.disclosure.reviewedImages[0].digest"),
        ({"digest": "latest"}, "spec.disclosure.reviewedImages[0].digest"),
        ({"days": -1}, "expiresAt must be after reviewedAt"),
    ],
)
def test_the_crd_refuses_a_malformed_review(
    control_plane: ControlPlane, change: dict[str, Any], reason: str
) -> None:
    days = int(change.pop("days", 90))
    entry = {**review("bob", days=days), **{k: v for k, v in change.items() if v is not None}}
    with control_plane.client("steward") as bob:
        refused = set_reviews(bob, entry)
    assert refused.status_code == 422, refused.text
    assert reason in refused.json()["message"]


def test_a_researcher_cannot_add_or_edit_a_review(control_plane: ControlPlane) -> None:
    with control_plane.client("steward") as bob:
        assert set_reviews(bob, review("bob")).status_code == 200
    with control_plane.client("researcher") as alice:
        own = set_reviews(alice, review("alice"))
        edited = set_reviews(alice, {**review("bob"), "digest": DIGEST_B})
    assert (own.status_code, edited.status_code) == (403, 403)
    assert 'cannot patch resource "stationpolicies"' in own.json()["message"]
