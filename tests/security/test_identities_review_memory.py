"""The steward endpoints with Kubernetes identities and their review memory, under attack.

The whole path runs for real: the external app, :class:`CachedIdentities` and
:class:`KubernetesIdentities` (lightkube). Only the Kubernetes API server is a test double,
which answers TokenReview and SubjectAccessReview as RBAC would and can revoke a token, take a
permission away or fail. The attackers: a researcher with a valid token of their own, someone
with a stolen token that has since been revoked, and anyone sending forged tokens in bulk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from security_channels_kit import bearer
from stationkit import client_for, make_store, started_station, station_settings

from pht_station_api.app import create_external_app
from pht_station_api.identity_cache import CachedIdentities
from pht_station_api.kubernetes_identities import KubernetesIdentities
from pht_station_api.settings import Settings

TTL_SECONDS = 10.0
MAX_ENTRIES = 64
STEWARD = "alice-oidc-token"
RESEARCHER = "bob-oidc-token"
#: Alice's token limited to reading who she is (an OAuth token with a scope, say).
SCOPED = "alice-scoped-token"
SCOPES = "scopes.authorization.openshift.io"
HELD = "/stewards/held"


class ApiServer:
    """TokenReview and SubjectAccessReview as the API server answers them (test double)."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, list[str]]] = {
            STEWARD: ("alice", ["pht-stewards"]),
            RESEARCHER: ("bob", ["researchers"]),
            SCOPED: ("alice", ["pht-stewards"]),
        }
        self.extra: dict[str, dict[str, list[str]]] = {SCOPED: {SCOPES: ["user:info"]}}
        #: (username, verb, namespace) that RBAC allows.
        self.rbac: set[tuple[str, str, str]] = {("alice", "release", "pht-requests")}
        self.failing = False
        self.token_reviews = 0
        self.access_reviews: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if self.failing:
            return httpx2.Response(503, json={"kind": "Status", "message": "unavailable"})
        body = json.loads(request.content)
        if request.url.path.endswith("/tokenreviews"):
            self.token_reviews += 1
            user = self.tokens.get(body["spec"]["token"])
            status: dict[str, Any] = {"authenticated": user is not None}
            if user is not None:
                status["user"] = {"username": user[0], "groups": user[1]}
                extra = self.extra.get(body["spec"]["token"])
                if extra:
                    status["user"]["extra"] = extra
            return httpx2.Response(201, json={**body, "status": status})
        self.access_reviews.append(body["spec"])
        attributes = body["spec"]["resourceAttributes"]
        question = (body["spec"]["user"], attributes["verb"], attributes["namespace"])
        # As a scope authoriser does: a token limited to "user:info" may do nothing here.
        scoped = "user:info" in (body["spec"].get("extra") or {}).get(SCOPES, [])
        allowed = question in self.rbac and not scoped
        return httpx2.Response(201, json={**body, "status": {"allowed": allowed}})


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def station(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, ApiServer, Clock, CachedIdentities]]:
    server, clock = ApiServer(), Clock()
    token_file = tmp_path / "sa-token"
    token_file.write_text("station-api-sa-token\n")
    kubernetes = Settings(
        KUBERNETES_API_URL="https://kubernetes.test",
        KUBERNETES_TOKEN_FILE=token_file,
        KUBERNETES_CA_FILE=None,
    )
    async with started_station(
        station_settings(make_store(tmp_path / "store", patients=5), tmp_path / "state")
    ) as state:
        await state.identities.close()
        reviewed = KubernetesIdentities(kubernetes, transport=httpx2.MockTransport(server))
        memory = CachedIdentities(reviewed, TTL_SECONDS, MAX_ENTRIES, clock)
        state.identities = memory
        async with client_for(create_external_app(state), "http://station.test") as client:
            yield client, server, clock, memory


Station = tuple[httpx.AsyncClient, ApiServer, Clock, CachedIdentities]


async def test_a_revoked_token_stops_working_once_the_memory_expires(station: Station) -> None:
    client, server, clock, _ = station
    assert (await client.get(HELD, headers=bearer(STEWARD))).status_code == 200
    del server.tokens[STEWARD]  # revoked: the user was removed, the OIDC session ended
    clock.now += TTL_SECONDS - 0.5
    # Still remembered: the documented window, no longer.
    assert (await client.get(HELD, headers=bearer(STEWARD))).status_code == 200
    clock.now += 0.5
    refused = await client.get(HELD, headers=bearer(STEWARD))
    assert refused.status_code == 401
    assert refused.json()["reason"] == "Unauthenticated"


async def test_a_permission_taken_away_counts_once_the_memory_expires(station: Station) -> None:
    client, server, clock, _ = station
    view = "/stewards/results/pht-requests/km"
    assert (await client.get(view, headers=bearer(STEWARD))).status_code == 404  # allowed
    server.rbac.clear()
    clock.now += TTL_SECONDS
    assert (await client.get(view, headers=bearer(STEWARD))).status_code == 403


async def test_an_allowed_answer_never_answers_another_question(station: Station) -> None:
    client, server, _, _ = station
    allowed = "/stewards/results/pht-requests/km"
    assert (await client.get(allowed, headers=bearer(STEWARD))).status_code == 404
    # Same steward, same train name, another namespace: asked again, and refused.
    other = await client.get("/stewards/results/pht-other/km", headers=bearer(STEWARD))
    assert other.status_code == 403
    # Another user after the steward's allowed answer: refused for the very same train.
    researcher = await client.get(allowed, headers=bearer(RESEARCHER))
    assert researcher.status_code == 403
    asked = [
        (spec["user"], spec["resourceAttributes"]["namespace"]) for spec in server.access_reviews
    ]
    assert asked == [("alice", "pht-requests"), ("alice", "pht-other"), ("bob", "pht-requests")]


async def test_a_failed_review_is_not_remembered_as_an_answer(station: Station) -> None:
    client, server, _, _ = station
    server.failing = True
    unavailable = await client.get(HELD, headers=bearer(STEWARD))
    assert unavailable.status_code == 503
    server.failing = False
    # No waiting out a remembered failure, and no failure turned into "not valid".
    assert (await client.get(HELD, headers=bearer(STEWARD))).status_code == 200


async def test_forged_tokens_in_bulk_keep_the_memory_bounded(station: Station) -> None:
    client, server, _, memory = station
    for number in range(MAX_ENTRIES * 3):
        answer = await client.get(HELD, headers=bearer(f"forged-{number}"))
        assert answer.status_code == 401
    assert len(memory._tokens) <= MAX_ENTRIES
    # A forged token is never mistaken for the steward's, whatever the memory evicted.
    assert (await client.get(HELD, headers=bearer(STEWARD))).status_code == 200
    assert server.token_reviews == MAX_ENTRIES * 3 + 1


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        f"Token {STEWARD}",
        f"{STEWARD}",
    ],
)
async def test_a_malformed_authorization_header_asks_nobody(station: Station, header: str) -> None:
    client, server, _, _ = station
    answer = await client.get(HELD, headers={"Authorization": header})
    assert answer.status_code == 401
    assert server.token_reviews == 0


async def test_a_token_limited_by_its_extra_attributes_keeps_its_limits(station: Station) -> None:
    """The user's full rights, remembered from their full token, never answer for a token the
    authenticator limited (the limits travel in ``extra`` to the SubjectAccessReview)."""
    client, server, _, _ = station
    view = "/stewards/results/pht-requests/km"
    assert (await client.get(view, headers=bearer(STEWARD))).status_code == 404  # allowed
    refused = await client.get(view, headers=bearer(SCOPED))
    assert refused.status_code == 403
    assert server.access_reviews[-1]["extra"] == {SCOPES: ["user:info"]}
    assert "extra" not in server.access_reviews[0]
