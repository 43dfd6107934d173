"""Human identities: TokenReview + SubjectAccessReview decide, and a failed review never guesses.

The Kubernetes API here is a test double (an ``httpx2.MockTransport`` under lightkube, answering
the two review endpoints the way the API server does); the requests it receives are asserted.
The review memory (:class:`CachedIdentities`) is tested against a double that counts the
reviews it is asked for, with a clock the test moves.
"""

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from stationkit import STEWARD_TOKEN, identities_file

from pht_station_api.deps import VERB_GET, VERB_RELEASE, authorize
from pht_station_api.errors import Forbidden, IdentityUnavailable, Unauthenticated
from pht_station_api.identities import Identity, LocalIdentities
from pht_station_api.identity_cache import CachedIdentities
from pht_station_api.kubernetes_identities import KubernetesIdentities
from pht_station_api.settings import Settings

USERS = {"steward-token": ("alice", ["pht-stewards"]), "researcher-token": ("bob", ["researchers"])}
ALLOWED = {("alice", "release"), ("bob", "get")}


class FakeKubernetes:
    """Answers TokenReview and SubjectAccessReview like the API server would (test double)."""

    def __init__(self, fail: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if self.fail:
            return httpx2.Response(500, json={"kind": "Status", "message": "etcd is down"})
        assert request.headers["authorization"] == "Bearer sa-token"
        body = json.loads(request.content)
        self.requests.append(body)
        if request.url.path.endswith("/tokenreviews"):
            user = USERS.get(body["spec"]["token"])
            assert "audiences" not in body["spec"], "the API server's own audience is asked for"
            status: dict[str, Any] = {"authenticated": user is not None}
            if user:
                status["user"] = {"username": user[0], "groups": user[1], "uid": "u-" + user[0]}
            return httpx2.Response(201, json={**body, "status": status})
        attributes = body["spec"]["resourceAttributes"]
        allowed = (body["spec"]["user"], attributes["verb"]) in ALLOWED
        return httpx2.Response(201, json={**body, "status": {"allowed": allowed}})


def checker(tmp_path: Path, fake: FakeKubernetes) -> KubernetesIdentities:
    token_file = tmp_path / "sa-token"
    token_file.write_text("sa-token\n")
    settings = Settings(
        kubernetes_api_url="https://k8s.test",
        kubernetes_token_file=token_file,
        kubernetes_ca_file=None,
    )
    return KubernetesIdentities(settings, transport=httpx2.MockTransport(fake))


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


async def test_an_unreachable_api_server_is_unavailable(tmp_path: Path) -> None:
    def refuse(_: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    token_file = tmp_path / "sa-token"
    token_file.write_text("sa-token")
    settings = Settings(kubernetes_token_file=token_file, kubernetes_ca_file=None)
    identities = KubernetesIdentities(settings, transport=httpx2.MockTransport(refuse))
    with pytest.raises(IdentityUnavailable):
        await identities.authenticate("steward-token")
    await identities.close()


async def test_without_its_own_token_the_api_is_unavailable_not_open(tmp_path: Path) -> None:
    settings = Settings(kubernetes_token_file=tmp_path / "missing", kubernetes_ca_file=None)
    fake = FakeKubernetes()
    identities = KubernetesIdentities(settings, transport=httpx2.MockTransport(fake))
    with pytest.raises(IdentityUnavailable):
        await identities.authenticate("steward-token")
    assert fake.requests == []
    await identities.close()


async def test_a_kubeconfig_file_is_used_when_configured(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://elsewhere.test"}}],
                "users": [{"name": "u", "user": {"token": "sa-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    hosts: list[str] = []
    fake = FakeKubernetes()

    def answer(request: httpx2.Request) -> httpx2.Response:
        hosts.append(request.url.host)
        return fake(request)

    settings = Settings(kubeconfig=kubeconfig, kubernetes_token_file=tmp_path / "unused")
    identities = KubernetesIdentities(settings, transport=httpx2.MockTransport(answer))
    assert (await identities.authenticate("steward-token")).username == "alice"
    assert hosts == ["elsewhere.test"]
    await identities.close()


class CountingChecker:
    """Answers like the fake API server and counts every review it is asked for."""

    def __init__(self) -> None:
        self.token_reviews: list[str] = []
        self.access_reviews = 0
        self.unavailable = False
        self.allow = True

    async def authenticate(self, token: str) -> Identity:
        self.token_reviews.append(token)
        if self.unavailable:
            raise IdentityUnavailable("the Kubernetes API could not be reached")
        user = USERS.get(token)
        if user is None:
            raise Unauthenticated("the bearer token is not valid in this cluster")
        return Identity(user[0], tuple(user[1]))

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool:
        self.access_reviews += 1
        if self.unavailable:
            raise IdentityUnavailable("the Kubernetes API could not be reached")
        return self.allow and (identity.username, verb) in ALLOWED

    async def close(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached(
    ttl: float = 10.0, max_entries: int = 100
) -> tuple[CachedIdentities, CountingChecker, Clock]:
    inner, clock = CountingChecker(), Clock()
    return CachedIdentities(inner, ttl, max_entries, clock), inner, clock


async def test_a_token_is_reviewed_once_within_the_ttl_and_again_after() -> None:
    identities, inner, clock = cached(ttl=10.0)
    first = await identities.authenticate("steward-token")
    clock.now += 9.9
    assert await identities.authenticate("steward-token") == first
    assert len(inner.token_reviews) == 1
    clock.now += 0.1
    assert await identities.authenticate("steward-token") == first
    assert len(inner.token_reviews) == 2


async def test_a_refused_token_is_remembered_and_expires_too() -> None:
    identities, inner, clock = cached(ttl=10.0)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await identities.authenticate("forged")
    assert inner.token_reviews == ["forged"]
    clock.now += 10.0
    with pytest.raises(Unauthenticated):
        await identities.authenticate("forged")
    assert inner.token_reviews == ["forged", "forged"]


async def test_access_answers_are_remembered_per_question_and_denials_expire() -> None:
    identities, inner, clock = cached(ttl=10.0)
    alice = await identities.authenticate("steward-token")
    assert await identities.allowed(alice, VERB_RELEASE, "ns", "km", None)
    assert await identities.allowed(alice, VERB_RELEASE, "ns", "km", None)
    assert inner.access_reviews == 1
    # Every part of the question is part of the key.
    assert not await identities.allowed(alice, VERB_GET, "ns", "km", None)
    assert await identities.allowed(alice, VERB_RELEASE, "other", "km", None)
    assert await identities.allowed(alice, VERB_RELEASE, "ns", "other", None)
    assert not await identities.allowed(alice, VERB_GET, "ns", "km", "results")
    assert inner.access_reviews == 5
    # A denial is remembered for the TTL only: a new RoleBinding counts after it.
    assert not await identities.allowed(alice, VERB_GET, "ns", "km", None)
    assert inner.access_reviews == 5
    clock.now += 10.0
    assert not await identities.allowed(alice, VERB_GET, "ns", "km", None)
    assert inner.access_reviews == 6


async def test_a_revoked_permission_counts_once_the_ttl_has_passed() -> None:
    identities, inner, clock = cached(ttl=10.0)
    alice = await identities.authenticate("steward-token")
    assert await identities.allowed(alice, VERB_RELEASE, "ns", "km", None)
    inner.allow = False
    clock.now += 10.0
    assert not await identities.allowed(alice, VERB_RELEASE, "ns", "km", None)


async def test_failures_to_ask_are_not_remembered() -> None:
    identities, inner, _ = cached(ttl=10.0)
    inner.unavailable = True
    with pytest.raises(IdentityUnavailable):
        await identities.authenticate("steward-token")
    with pytest.raises(IdentityUnavailable):
        await identities.allowed(Identity("alice"), VERB_RELEASE, "ns", "km", None)
    inner.unavailable = False
    alice = await identities.authenticate("steward-token")
    assert await identities.allowed(alice, VERB_RELEASE, "ns", "km", None)
    assert len(inner.token_reviews) == 2 and inner.access_reviews == 2


async def test_another_token_cannot_reuse_or_poison_a_remembered_answer() -> None:
    identities, inner, _ = cached(ttl=10.0)
    assert (await identities.authenticate("steward-token")).username == "alice"
    # A forged token, or one that differs from the steward's by a character, is reviewed anew
    # and its refusal does not touch the steward's entry.
    for attempt in ("forged", "steward-token ", "steward-toke", "STEWARD-TOKEN"):
        with pytest.raises(Unauthenticated):
            await identities.authenticate(attempt)
    assert (await identities.authenticate("steward-token")).username == "alice"
    assert inner.token_reviews.count("steward-token") == 1
    # The researcher's answer does not become the steward's, nor the other way round.
    assert (await identities.authenticate("researcher-token")).username == "bob"
    assert (await identities.authenticate("steward-token")).username == "alice"
    # A different identity (other groups) asking the same question is asked about anew.
    alice = Identity("alice", ("pht-stewards",))
    impostor = Identity("alice", ("pht-stewards", "system:masters"))
    assert await identities.allowed(alice, VERB_RELEASE, "ns", "km", None)
    inner.allow = False
    assert not await identities.allowed(impostor, VERB_RELEASE, "ns", "km", None)


async def test_the_memory_holds_no_token_and_stays_bounded() -> None:
    identities, _, _ = cached(ttl=10.0, max_entries=3)
    for index in range(10):
        with pytest.raises(Unauthenticated):
            await identities.authenticate(f"token-{index}")
    await identities.authenticate("steward-token")
    answers = identities._tokens  # the memory itself is what is checked
    assert len(answers) == 3
    keys = list(answers._answers)
    assert all(isinstance(key, bytes) and b"token" not in key for key in keys)


async def test_a_zero_ttl_asks_every_time() -> None:
    identities, inner, _ = cached(ttl=0.0)
    await identities.authenticate("steward-token")
    await identities.authenticate("steward-token")
    assert len(inner.token_reviews) == 2
