"""Signing in to the console through the hospital's OpenID provider, in Chromium, on a real
control plane.

The provider (oidc-provider on Node.js, ``make tools``) serves its own login page over HTTPS;
the API server trusts its ID tokens (``oidc:`` names and groups) and the chart's RBAC binds its
steward and researcher groups. The station API runs with ``IDENTITY_MODE=kubernetes``: the
console presents the signed-in person's ID token to TokenReview, SubjectAccessReview and the
Kubernetes API. The console is opened as ``http://localhost``, another site than the provider's
``https://127.0.0.1``, as a hospital's console and identity provider are.

A steward signs in on the provider's page, approves a Train and sees it start; a researcher
signed in the same way is refused the approval.
"""

import asyncio
import base64
import hashlib
import re
import secrets
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.controlplane.authentication import OidcTrust
from pht_sandbox.controlplane.cluster import ControlPlane, kubeconfig
from pht_sandbox.controlplane.oidcprovider import (
    CONSOLE_CLIENT_ID,
    RESEARCHER_GROUP,
    STEWARD_GROUP,
    OpenIdProvider,
    hospital_provider,
)
from pht_sandbox.controlplane.processes import free_port
from pht_sandbox.realstation import (
    CHART_VALUES,
    RELEASE,
    SYSTEM_NAMESPACE,
    RealStation,
    control_plane_binaries,
)
from pht_sandbox.stations import REQUEST_NAMESPACE, StationConfig

from .browserkit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PATIENTS,
    POLICY_FILE,
    TRAIN_FILE,
    VIEWPORT,
    load_yaml,
    look_at,
    shoot,
    state_shown,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

#: The API server's prefix for the provider's user names and groups.
PREFIX: Final = "oidc:"
API_ACCOUNT: Final = f"{RELEASE}-pht-station-api"
TRAIN: Final = str(load_yaml(TRAIN_FILE)["metadata"]["name"])
STARTED: Final = ("Queued", "Running", "AwaitingRelease", "Succeeded")


def chart_values() -> Obj:
    """The station in a box's chart values, with the provider's groups bound as well."""
    rbac = CHART_VALUES["rbac"]
    return {
        **CHART_VALUES,
        "rbac": {
            "stewards": [*rbac["stewards"], {"kind": "Group", "name": PREFIX + STEWARD_GROUP}],
            "researchers": [
                *rbac["researchers"],
                {"kind": "Group", "name": PREFIX + RESEARCHER_GROUP},
            ],
        },
    }


@dataclass
class OpenIdStation(RealStation):
    """A station on a real control plane whose console signs people in with ``provider``."""

    provider: OpenIdProvider | None = None
    console_port: int = 0

    def chart_values(self) -> Obj:
        return chart_values()

    def _api_kubeconfig(self, path: Path) -> Path:
        """The chart's station-API ServiceAccount token, as its pod would mount it."""
        assert self.plane is not None
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }
        with self.plane.client("admin") as admin:
            answer = admin.post(
                f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts/{API_ACCOUNT}/token",
                json=request,
            )
        assert answer.status_code == 201, answer.text
        token = answer.json()["status"]["token"]
        document = kubeconfig(self.plane.server, self.plane.ca, API_ACCOUNT, {"token": token})
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    def _start_station_api(self, work: Path, store: Path) -> tuple[int, int, int]:
        assert self.provider is not None
        (work / "operator-token").write_text(secrets.token_urlsafe(32))
        (work / "operator-token").chmod(0o600)
        client = self.provider.client(CONSOLE_CLIENT_ID)
        assert client.secret is not None
        (work / "console-client-secret").write_text(client.secret)
        (work / "console-client-secret").chmod(0o600)
        internal, health, metrics = free_port(), free_port(), free_port()
        self.urls.internal = f"http://{self.internal_host}:{internal}"
        self.urls.external = f"http://localhost:{self.console_port}"
        self._spawn(
            "api",
            {
                "PHT_API_STORE": str(store),
                "PHT_API_STATE_DIR": str(work / "api-state"),
                "PHT_API_INTERNAL_HOST": self.internal_host,
                "PHT_API_INTERNAL_PORT": str(internal),
                "PHT_API_EXTERNAL_HOST": "127.0.0.1",
                "PHT_API_EXTERNAL_PORT": str(self.console_port),
                "PHT_API_OPERATOR_TOKEN_FILE": str(work / "operator-token"),
                "PHT_API_IDENTITY_MODE": "kubernetes",
                "PHT_API_KUBECONFIG": str(self._api_kubeconfig(work / "api.kubeconfig")),
                "PHT_API_STATION_NAME": self.config.name,
                "PHT_API_PUBLIC_BASE_URL": self.urls.external,
                "PHT_API_CONSOLE_NAMESPACES": REQUEST_NAMESPACE,
                "PHT_API_CONSOLE_OIDC_ISSUER": self.provider.issuer,
                "PHT_API_CONSOLE_OIDC_CLIENT_ID": CONSOLE_CLIENT_ID,
                "PHT_API_CONSOLE_OIDC_CLIENT_SECRET_FILE": str(work / "console-client-secret"),
                "PHT_API_CONSOLE_OIDC_CA_FILE": str(self.provider.ca),
                "PHT_API_CONSOLE_OIDC_REDIRECT_URL": client.redirect_uris[0],
            },
        )
        return internal, health, metrics


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def openid_station(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[OpenIdStation]:
    work = tmp_path_factory.mktemp("openid-station")
    port = free_port()
    callback = f"http://localhost:{port}/console/signin/callback"
    provider = hospital_provider(work / "provider", callback)
    await asyncio.to_thread(provider.start)
    trust = OidcTrust(provider.issuer, provider.ca, (CONSOLE_CLIENT_ID,))
    plane = ControlPlane(work / "control-plane", control_plane_binaries(), (trust,))
    try:
        await asyncio.to_thread(plane.start)
        config = StationConfig("openid", work / "station", patients=PATIENTS)
        station = OpenIdStation(
            config, plane=plane, pod_runtime="process", provider=provider, console_port=port
        )
        station.say = lambda _line: None
        await asyncio.to_thread(station._install_chart, work)
        async with station:
            await station.apply(load_yaml(POLICY_FILE), constants.POLICY_PLURAL)
            yield station
    finally:
        await asyncio.to_thread(plane.stop)
        await asyncio.to_thread(provider.stop)


def spki_pin(issuer: str) -> str:
    """The base64 SHA-256 of the provider's served certificate's public key: Chromium accepts
    that one certificate from the throw-away CA, and no other."""
    parts = urlsplit(issuer)
    pem = ssl.get_server_certificate((parts.hostname or "127.0.0.1", parts.port or 443))
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def openid_browser(openid_station: OpenIdStation) -> AsyncIterator[BrowserContext]:
    assert openid_station.provider is not None
    if not CHROMIUM.is_file():
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}", pytrace=False)
    pin = spki_pin(openid_station.provider.issuer)
    with tempfile.TemporaryDirectory(prefix="pht-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"],
                viewport=VIEWPORT,
                locale="en-GB",
            )
            try:
                yield context
            finally:
                await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def openid_page(openid_browser: BrowserContext) -> AsyncIterator[Page]:
    await openid_browser.clear_cookies()
    tab = await openid_browser.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        await tab.close()


async def sign_in_at_provider(page: Page, station: OpenIdStation, role: str) -> str:
    """Open the console and sign in on the provider's own page, as ``role``; returns the name
    the cluster knows the person by."""
    assert station.provider is not None
    person = station.provider.people[role]
    await page.context.clear_cookies()
    await page.goto(f"{station.urls.external}/console/")
    await expect(page).to_have_url(re.compile(re.escape(station.provider.issuer) + "/interaction/"))
    await page.get_by_label("Username").fill(person.username)
    await page.get_by_label("Password").fill(person.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(station.urls.external) + "/console/"))
    name = PREFIX + person.email
    await expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    return name


def awaiting_approval(train: Obj) -> bool:
    return (train.get("status") or {}).get("summary") == "AwaitingApproval"


async def test_a_researcher_signed_in_with_the_provider_is_refused_approval(
    openid_station: OpenIdStation, openid_page: Page
) -> None:
    page = openid_page
    await openid_station.apply(load_yaml(TRAIN_FILE), constants.TRAIN_PLURAL)
    assert awaiting_approval(await openid_station.wait_for(TRAIN, awaiting_approval, 120))
    researcher = await sign_in_at_provider(page, openid_station, "researcher")
    await expect(page.get_by_text("No Train waits for your approval.")).to_be_visible()
    answer = await page.goto(
        f"{openid_station.urls.external}/console/approvals/{REQUEST_NAMESPACE}/{TRAIN}"
    )
    assert answer is not None and answer.status == 403
    await expect(page.get_by_role("alert")).to_contain_text(
        f"{researcher} may not approve train {REQUEST_NAMESPACE}/{TRAIN}"
    )
    await look_at(page, "openid-refused-researcher")


async def test_a_steward_signs_in_with_the_provider_approves_and_the_train_starts(
    openid_station: OpenIdStation, openid_page: Page
) -> None:
    page = openid_page
    assert openid_station.provider is not None
    await page.context.clear_cookies()
    await page.goto(f"{openid_station.urls.external}/console/")
    await expect(page.get_by_label("Password")).to_be_visible()
    # The provider's own page: photographed, not judged as a console page.
    await shoot(page, "openid-provider-sign-in")
    steward = await sign_in_at_provider(page, openid_station, "steward")
    await page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{TRAIN}").click()
    await page.get_by_label("Reason").fill("Purpose, queries and image match the protocol.")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
    await expect(page.get_by_text(f"{steward}: Approve")).to_be_visible()

    await page.get_by_role("link", name="Trains", exact=True).click()
    await state_shown(page, TRAIN, STARTED, 120)
    await look_at(page, "openid-trains")
