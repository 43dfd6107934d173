"""A steward's kubeconfig token works on the steward routes: TokenReview decides who it is.

The station is real; the Kubernetes API is a test double under lightkube that authenticates
tokens the way an API server with an OIDC issuer would (an ID token maps to ``oidc:<name>``
and the issuer's groups), and answers the access review from a table. It records what the
station asked, so the test can check that no audience narrowed the review.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
import pytest_asyncio
from stationkit import client_for

from pht_station_api.app import create_external_app
from pht_station_api.identity_cache import CachedIdentities
from pht_station_api.kubernetes_identities import KubernetesIdentities
from pht_station_api.routers.stewards import HELD_PATH
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: What the double's API server accepts: an OIDC ID token and a service-account token.
TOKENS = {
    "eyJ.oidc-id-token.sig": ("oidc:alice@hospital.example", ["oidc:pht-stewards"]),
    "eyJ.sa-token.sig": ("system:serviceaccount:pht-requests:bot", ["system:serviceaccounts"]),
}
STEWARDS = {"oidc:pht-stewards"}


class OidcCluster:
    def __init__(self) -> None:
        self.token_reviews: list[dict[str, Any]] = []
        self.access_reviews: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/tokenreviews"):
            self.token_reviews.append(body["spec"])
            known = TOKENS.get(body["spec"]["token"])
            status: dict[str, Any] = {"authenticated": known is not None}
            if known:
                status["user"] = {"username": known[0], "groups": known[1]}
                status["audiences"] = ["https://kubernetes.default.svc"]
            return httpx2.Response(201, json={**body, "status": status})
        self.access_reviews.append(body["spec"])
        allowed = bool(STEWARDS & set(body["spec"].get("groups", [])))
        return httpx2.Response(201, json={**body, "status": {"allowed": allowed}})


@pytest.fixture(scope="module")
def cluster() -> OidcCluster:
    return OidcCluster()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def external(station: StationState, cluster: OidcCluster) -> AsyncIterator[httpx.AsyncClient]:
    token_file = station.settings.state_dir / "api-sa-token"
    token_file.write_text("api-own-token")
    settings = station.settings.model_copy(
        update={"kubernetes_token_file": token_file, "kubernetes_ca_file": None}
    )
    kubernetes = KubernetesIdentities(settings, transport=httpx2.MockTransport(cluster))
    local, station.identities = station.identities, CachedIdentities(kubernetes, 10.0)
    try:
        async with client_for(create_external_app(station), "http://fdp.test") as client:
            yield client
    finally:
        await station.identities.close()
        station.identities = local


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_oidc_id_token_from_a_kubeconfig_reaches_the_steward_routes(
    external: httpx.AsyncClient, cluster: OidcCluster
) -> None:
    held = await external.get(HELD_PATH, headers=bearer("eyJ.oidc-id-token.sig"))
    assert held.status_code == 200, held.text
    assert held.json() == {"items": []}
    # The review asked about the token as the API server sees it: no audience narrowed it.
    assert cluster.token_reviews[-1] == {"token": "eyJ.oidc-id-token.sig"}


async def test_rbac_still_decides_for_a_valid_token(
    external: httpx.AsyncClient, cluster: OidcCluster
) -> None:
    view = await external.get(
        "/stewards/results/pht-requests/some-train", headers=bearer("eyJ.sa-token.sig")
    )
    assert view.status_code == 403 and view.json()["reason"] == "Forbidden"
    review = cluster.access_reviews[-1]
    assert review["user"] == "system:serviceaccount:pht-requests:bot"
    assert review["resourceAttributes"]["verb"] == "release"


async def test_a_token_the_api_server_refuses_is_refused(
    external: httpx.AsyncClient, cluster: OidcCluster
) -> None:
    for token in ("eyJ.other-audience.sig", "eyJ.oidc-id-token.sig.tampered"):
        refused = await external.get(HELD_PATH, headers=bearer(token))
        assert refused.status_code == 401 and refused.json()["reason"] == "Unauthenticated"
        assert refused.headers["www-authenticate"] == "Bearer"
