"""Human identities: TokenReview + SubjectAccessReview decide, and a failed review never guesses.

The Kubernetes API here is a test double (an ``httpx.MockTransport`` answering the two review
endpoints the way the API server does); the requests it receives are asserted.
"""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from stationkit import STEWARD_TOKEN, identities_file

from pht_station_api.deps import VERB_GET, VERB_RELEASE, authorize
from pht_station_api.errors import Forbidden, IdentityUnavailable, Unauthenticated
from pht_station_api.identities import Identity, KubernetesIdentities, LocalIdentities
from pht_station_api.settings import Settings

USERS = {"steward-token": ("alice", ["pht-stewards"]), "researcher-token": ("bob", ["researchers"])}
ALLOWED = {("alice", "release"), ("bob", "get")}


class FakeKubernetes:
    """Answers TokenReview and SubjectAccessReview like the API server would (test double)."""

    def __init__(self, fail: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            return httpx.Response(500)
        assert request.headers["authorization"] == "Bearer sa-token"
        body = json.loads(request.content)
        self.requests.append(body)
        if request.url.path.endswith("/tokenreviews"):
            user = USERS.get(body["spec"]["token"])
            status: dict[str, Any] = {"authenticated": user is not None}
            if user:
                status["user"] = {"username": user[0], "groups": user[1], "uid": "u-" + user[0]}
            return httpx.Response(201, json={**body, "status": status})
        attributes = body["spec"]["resourceAttributes"]
        allowed = (body["spec"]["user"], attributes["verb"]) in ALLOWED
        return httpx.Response(201, json={**body, "status": {"allowed": allowed}})


def checker(tmp_path: Path, fake: FakeKubernetes) -> KubernetesIdentities:
    token_file = tmp_path / "sa-token"
    token_file.write_text("sa-token\n")
    settings = Settings(
        KUBERNETES_API_URL="https://k8s.test",
        KUBERNETES_TOKEN_FILE=token_file,
        KUBERNETES_CA_FILE=None,
    )
    return KubernetesIdentities(settings, transport=httpx.MockTransport(fake))


async def test_token_review_maps_user_and_groups(tmp_path: Path) -> None:
    fake = FakeKubernetes()
    identities = checker(tmp_path, fake)
    identity = await identities.authenticate("steward-token")
    assert identity == Identity("alice", ("pht-stewards",), "u-alice")
    with pytest.raises(Unauthenticated):
        await identities.authenticate("forged")
    await identities.close()


async def test_subject_access_review_is_asked_about_the_train(tmp_path: Path) -> None:
    fake = FakeKubernetes()
    identities = checker(tmp_path, fake)
    alice = await identities.authenticate("steward-token")
    assert await identities.allowed(alice, VERB_RELEASE, "pht-requests", "km", None)
    assert not await identities.allowed(alice, VERB_GET, "pht-requests", "km", "results")
    review = fake.requests[-1]["spec"]
    assert review["user"] == "alice" and review["groups"] == ["pht-stewards"]
    assert review["resourceAttributes"] == {
        "group": "pht.health-ai.nl",
        "resource": "trains",
        "verb": "get",
        "namespace": "pht-requests",
        "name": "km",
        "subresource": "results",
    }
    await identities.close()


async def test_a_failing_review_is_unavailable_not_allowed(tmp_path: Path) -> None:
    identities = checker(tmp_path, FakeKubernetes(fail=True))
    with pytest.raises(IdentityUnavailable):
        await identities.authenticate("steward-token")
    with pytest.raises(IdentityUnavailable):
        await identities.allowed(Identity("alice"), VERB_RELEASE, "ns", "t", None)
    await identities.close()


async def test_authorize_raises_forbidden(tmp_path: Path) -> None:
    class State:
        def __init__(self, identities: KubernetesIdentities) -> None:
            self.identities = identities

    identities = checker(tmp_path, FakeKubernetes())
    bob = await identities.authenticate("researcher-token")
    await authorize(State(identities), bob, VERB_GET, "pht-requests", "km", "results")  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        await authorize(State(identities), bob, VERB_RELEASE, "pht-requests", "km")  # type: ignore[arg-type]
    await identities.close()


async def test_local_identities_for_the_station_in_a_box(tmp_path: Path) -> None:
    local = LocalIdentities.from_file(identities_file(tmp_path))
    steward = await local.authenticate(STEWARD_TOKEN)
    assert steward.username == "steward"
    assert await local.allowed(steward, VERB_RELEASE, "any-namespace", "t", None)
    assert not await local.allowed(Identity("someone"), VERB_RELEASE, "ns", "t", None)
    with pytest.raises(Unauthenticated):
        await local.authenticate("guess")
