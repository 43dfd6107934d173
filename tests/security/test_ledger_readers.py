"""Who can read a release: the chart's RBAC, as the station API's SubjectAccessReview asks it.

The ledger's reach rests on who can download a released result. Here the Kubernetes API is a
test double that answers TokenReview for three people and SubjectAccessReview by evaluating the
RBAC the chart actually renders (the ``gpu-kueue`` CI profile: two station namespaces, one
researcher group and one steward group bound in each). A researcher downloads a release, a
person with no binding gets a 403 with its reason, and the same researchers reach every station
namespace — which is why the ledger compares patient sets across the whole station.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
import pytest_asyncio
from chart.rendering import documents, find, render_profile
from security_ledger_station import block_query, patient_iris, result_url, run_train
from stationkit import bearer, client_for, make_store, started_station, station_settings

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.kubernetes_identities import KubernetesIdentities
from pht_station_api.state import StationState

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

PEOPLE = {
    "researcher-token": ("oidc:rita", ["consortium-researchers"]),
    "steward-token": ("oidc:sam", ["hospital-data-stewards"]),
    "stranger-token": ("oidc:eve", ["somebody-else"]),
}


class RenderedRbac:
    """Answers reviews from the chart's RoleBindings and ClusterRoles (no wildcards in them)."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.roles = {r["metadata"]["name"]: r for r in find(docs, "ClusterRole")}
        self.bindings = find(docs, "RoleBinding")
        self.cluster_bindings = find(docs, "ClusterRoleBinding")
        self.reviews: list[dict[str, Any]] = []

    def _granted(self, binding: dict[str, Any], user: str, groups: list[str]) -> bool:
        for subject in binding.get("subjects") or []:
            if subject["kind"] == "User" and subject["name"] == user:
                return True
            if subject["kind"] == "Group" and subject["name"] in groups:
                return True
        return False

    def allowed(self, user: str, groups: list[str], attributes: dict[str, str]) -> bool:
        resource = attributes["resource"]
        if attributes.get("subresource"):
            resource += "/" + attributes["subresource"]
        bindings = [
            b for b in self.bindings if b["metadata"]["namespace"] == attributes["namespace"]
        ] + self.cluster_bindings
        for binding in bindings:
            role = self.roles.get(binding["roleRef"]["name"])
            if role is None or not self._granted(binding, user, groups):
                continue
            for rule in role["rules"]:
                if (
                    attributes["group"] in rule.get("apiGroups", [])
                    and resource in rule.get("resources", [])
                    and attributes["verb"] in rule.get("verbs", [])
                ):
                    return True
        return False

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/tokenreviews"):
            person = PEOPLE.get(body["spec"]["token"])
            status: dict[str, Any] = {"authenticated": person is not None}
            if person:
                status["user"] = {"username": person[0], "groups": person[1]}
            return httpx2.Response(201, json={**body, "status": status})
        spec = body["spec"]
        self.reviews.append(spec["resourceAttributes"])
        verdict = self.allowed(spec["user"], spec["groups"], spec["resourceAttributes"])
        return httpx2.Response(201, json={**body, "status": {"allowed": verdict}})


@pytest.fixture(scope="module")
def rbac() -> RenderedRbac:
    return RenderedRbac(documents(render_profile("gpu-kueue")))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(
    tmp_path_factory: pytest.TempPathFactory, rbac: RenderedRbac
) -> AsyncIterator[StationState]:
    state_dir = tmp_path_factory.mktemp("readers-state")
    token_file = state_dir / "sa-token"
    token_file.write_text("sa-token")
    store = make_store(tmp_path_factory.mktemp("readers-cohort") / "store")
    settings = station_settings(
        store,
        state_dir,
        identity_mode="kubernetes",
        kubernetes_api_url="https://k8s.test",
        kubernetes_token_file=token_file,
        kubernetes_ca_file=None,
    )
    async with started_station(settings) as state:
        state.identities = KubernetesIdentities(settings, transport=httpx2.MockTransport(rbac))
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def inside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def outside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_external_app(station), "http://fdp.test") as client:
        yield client


async def test_chart_readers_are_the_researchers_of_every_station_namespace(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, rbac: RenderedRbac
) -> None:
    iris = await patient_iris(inside)
    releases = []
    for index, namespace in enumerate(("pht-requests", "pht-federated")):
        reg, state = await run_train(
            inside, f"readers-{index}", namespace, "oidc:rita", block_query(iris, index)
        )
        assert state["release"] == "Released"
        releases.append(reg)
    for reg in releases:
        # The same researcher reads both namespaces' releases: the ledger must span them.
        got = await outside.get(result_url(reg), headers=bearer("researcher-token"))
        assert got.status_code == 200, got.text
        assert (await outside.get(result_url(reg), headers=bearer("steward-token"))).is_success
        denied = await outside.get(result_url(reg), headers=bearer("stranger-token"))
        assert (denied.status_code, denied.json()["reason"]) == (403, "Forbidden")
        table = await outside.get(
            result_url(reg) + "/tables/stages", headers=bearer("stranger-token")
        )
        assert table.status_code == 403
    # What the API asked is exactly what the chart grants researchers: get on trains/results.
    asked = {(a["group"], a["resource"], a.get("subresource"), a["verb"]) for a in rbac.reviews}
    assert asked == {("pht.health-ai.nl", "trains", "results", "get")}
    # A near-identical release in the other namespace is held: the readers are the same.
    _, state = await run_train(
        inside, "readers-near", "pht-federated", "oidc:rex", block_query(iris, 0, 45)
    )
    assert (state["release"], state["rule"]) == ("Held", "Differencing")


async def test_no_cluster_wide_grant_reaches_released_results(rbac: RenderedRbac) -> None:
    """Only namespace bindings grant reading results (the API's own binding reviews only)."""
    for binding in rbac.cluster_bindings:
        role = rbac.roles.get(binding["roleRef"]["name"])
        rules = role["rules"] if role else []
        assert not any("trains/results" in r.get("resources", []) for r in rules)
    assert rbac.cluster_bindings, "the station API's review binding is expected to render"
