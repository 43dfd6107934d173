"""People sign in with the hospital's OpenID provider and the real API server decides.

`pht login` (with a scripted browser step at the real provider) keeps each person's tokens;
kubectl and pht get the ID token through the kubeconfig's exec plugin, `pht credentials oidc`.
The API server maps `email` and `groups` with the prefix `oidc:`, the chart's RBAC binds the
provider's groups, and its admission policy records the signed-in steward as the approver. The
console's ID token (another audience of the same issuer) works the same way, and the station
API's own TokenReview and SubjectAccessReview accept and judge these tokens.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import yaml
from realcluster_kube import (
    API_ACCOUNT,
    GROUP,
    OIDC_PREFIX,
    REQUESTS_NS,
    SYSTEM_NS,
    mint_token,
    run,
    token_kubeconfig,
    wait_for,
)
from starlette.requests import Request

from pht_sandbox.controlplane.cluster import ControlPlane, kubeconfig
from pht_sandbox.controlplane.oidcprovider import (
    CLI_CLIENT_ID,
    CONSOLE_CLIENT_ID,
    OpenIdProvider,
    browser_sign_in,
    hospital_provider,
    sign_in_on_loopback,
    trusting,
)
from pht_station_api.console.oidc import PENDING_COOKIE, OidcSignIn
from pht_station_api.kubernetes_identities import KubernetesIdentities
from pht_station_api.settings import Settings

APPROVALS = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/trainapprovals"
TRAINS = f"/apis/{GROUP}/v1alpha1/namespaces/{REQUESTS_NS}/trains"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SELF_REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def lines(stream: Any) -> Iterator[str]:
    while line := stream.readline():
        yield line


def provider_flags(provider: OpenIdProvider) -> list[str]:
    return [
        "--issuer",
        provider.issuer,
        "--client-id",
        CLI_CLIENT_ID,
        "--ca-file",
        str(provider.ca),
    ]


def pht_login(provider: OpenIdProvider, role: str, cache: Path) -> None:
    """`pht login` as a person does it, the browser step scripted."""
    flags = [*provider_flags(provider), "--no-browser", "--timeout", "60"]
    running = subprocess.Popen(
        [sys.executable, "-m", "pht_cli.main", "login", *flags],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sign_in_on_loopback(provider, provider.people[role], lines(running.stderr))
    _, err = running.communicate(timeout=30)
    assert running.returncode == 0, err


def exec_kubeconfig(plane: ControlPlane, provider: OpenIdProvider, cache: Path) -> Path:
    """A kubeconfig whose user runs `pht credentials oidc`, as docs/install.md shows."""
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": ["-m", "pht_cli.main", "credentials", "oidc", *provider_flags(provider)],
            "env": [{"name": "XDG_CACHE_HOME", "value": str(cache)}],
            "interactiveMode": "Never",
        }
    }
    path = cache / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(kubeconfig(plane.server, plane.ca, "hospital", user)))
    return path


def cached_id_token(cache: Path) -> str:
    (path,) = (cache / "pht" / "oidc").glob("*.json")
    return str(json.loads(path.read_text())["id_token"])


@pytest.fixture(scope="module")
def signed_in(
    oidc_provider: OpenIdProvider,
    control_plane: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """Each person's kubeconfig after their `pht login` (once the chart's CRDs are served: the
    API server answers 429 while their storage initialises)."""
    with control_plane.client() as admin:
        wait_for(
            lambda: admin.get(TRAINS).status_code == 200 and admin.get(APPROVALS).status_code == 200
        )
    configs: dict[str, Path] = {}
    for role in ("steward", "steward2", "researcher", "nobody"):
        cache = tmp_path_factory.mktemp(f"oidc-{role}")
        pht_login(oidc_provider, role, cache)
        configs[role] = exec_kubeconfig(control_plane, oidc_provider, cache)
    return configs


def username(provider: OpenIdProvider, role: str) -> str:
    return OIDC_PREFIX + provider.people[role].email


def approval_yaml(name: str, approver: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "TrainApproval",
            "metadata": {"name": name, "namespace": REQUESTS_NS},
            "spec": {"train": {"name": "km-oidc", "specHash": "b" * 64}, "approver": approver},
        }
    )


def test_kubectl_and_pht_act_as_the_signed_in_person(
    oidc_provider: OpenIdProvider, chart: Path, signed_in: dict[str, Path]
) -> None:
    whoami = run("kubectl", ["auth", "whoami", "-o", "json"], signed_in["steward2"])
    assert whoami.returncode == 0, whoami.stderr
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == username(oidc_provider, "steward2")
    assert {"oidc:pht-stewards", "oidc:cardiology"} <= set(user["groups"])

    config = str(signed_in["steward"])
    pending = subprocess.run(
        [
            sys.executable,
            "-m",
            "pht_cli.main",
            "pending",
            "--kubeconfig",
            config,
            "-n",
            REQUESTS_NS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert pending.returncode == 0, pending.stderr


def test_a_steward_approves_in_their_own_name_and_no_one_else_s(
    oidc_provider: OpenIdProvider, chart: Path, signed_in: dict[str, Path]
) -> None:
    erin, frank = username(oidc_provider, "steward"), username(oidc_provider, "steward2")
    mine = run(
        "kubectl", ["create", "-f", "-"], signed_in["steward"], stdin=approval_yaml("by-erin", erin)
    )
    assert mine.returncode == 0, mine.stderr
    forged = run(
        "kubectl",
        ["create", "-f", "-"],
        signed_in["steward"],
        stdin=approval_yaml("as-frank", frank),
    )
    assert forged.returncode != 0
    assert f"spec.approver must be your own username ({erin})" in forged.stderr
    shown = run(
        "kubectl",
        ["get", "trainapprovals", "by-erin", "-n", REQUESTS_NS, "-o", "jsonpath={.spec.approver}"],
        signed_in["steward2"],
    )
    assert (shown.returncode, shown.stdout) == (0, erin), shown.stderr


def test_a_researcher_cannot_approve_and_a_person_without_a_role_sees_nothing(
    oidc_provider: OpenIdProvider, chart: Path, signed_in: dict[str, Path]
) -> None:
    grace = username(oidc_provider, "researcher")
    refused = run(
        "kubectl",
        ["create", "-f", "-"],
        signed_in["researcher"],
        stdin=approval_yaml("by-grace", grace),
    )
    assert refused.returncode != 0
    assert f'User "{grace}" cannot create resource "trainapprovals"' in refused.stderr
    listed = run("kubectl", ["get", "trains", "-n", REQUESTS_NS], signed_in["researcher"])
    assert listed.returncode == 0, listed.stderr

    nadia = username(oidc_provider, "nobody")
    for args in (
        ["get", "trains", "-n", REQUESTS_NS],
        ["get", "stationpolicies", "-n", REQUESTS_NS],
    ):
        nothing = run("kubectl", args, signed_in["nobody"])
        assert nothing.returncode != 0
        assert f'User "{nadia}" cannot list resource' in nothing.stderr


def _bearer(plane: ControlPlane, token: str) -> httpx.Response:
    with httpx.Client(base_url=plane.server, verify=trusting(plane.ca), timeout=10) as client:
        return client.post(WHOAMI, json=SELF_REVIEW, headers={"Authorization": f"Bearer {token}"})


def _forged(provider: OpenIdProvider, claims: dict[str, Any], key: bytes | None = None) -> str:
    return jwt.encode(
        claims, key or provider.signing_key_pem, algorithm="RS256", headers={"kid": provider.key_id}
    )


def test_the_api_server_refuses_tokens_it_must_not_trust(
    oidc_provider: OpenIdProvider,
    control_plane: ControlPlane,
    signed_in: dict[str, Path],
    tmp_path: Path,
) -> None:
    genuine = cached_id_token(signed_in["steward"].parent)
    assert _bearer(control_plane, genuine).status_code == 201
    claims = jwt.decode(genuine, options={"verify_signature": False})
    now = int(time.time())

    expired = _forged(oidc_provider, {**claims, "iat": now - 7200, "exp": now - 60})
    elsewhere = _forged(oidc_provider, {**claims, "aud": "another-application"})
    unverified = _forged(oidc_provider, {**claims, "email_verified": False})
    for refused in (expired, elsewhere, unverified):
        assert _bearer(control_plane, refused).status_code == 401

    # A genuine token of another issuer, with the same client ID and user name.
    other = hospital_provider(tmp_path / "other-idp", "https://station.example/cb")
    other.start()
    try:
        cache = tmp_path / "other-cache"
        pht_login(other, "steward", cache)
        assert _bearer(control_plane, cached_id_token(cache)).status_code == 401
    finally:
        other.stop()

    # Groups in a token never become the cluster's own: they carry the prefix.
    masters = _forged(oidc_provider, {**claims, "groups": ["system:masters"]})
    seen = _bearer(control_plane, masters).json()["status"]["userInfo"]
    assert "system:masters" not in seen["groups"] and "oidc:system:masters" in seen["groups"]
    with httpx.Client(
        base_url=control_plane.server, verify=trusting(control_plane.ca), timeout=10
    ) as client:
        secrets = client.get(
            f"/api/v1/namespaces/{SYSTEM_NS}/secrets",
            headers={"Authorization": f"Bearer {masters}"},
        )
    assert secrets.status_code == 403


async def _console_sign_in(provider: OpenIdProvider, role: str) -> str:
    """The console's sign-in of `role`; returns the ID token the console then acts with."""
    client = provider.client(CONSOLE_CLIENT_ID)
    assert client.secret is not None
    signin = OidcSignIn(
        issuer=provider.issuer,
        client_id=CONSOLE_CLIENT_ID,
        client_secret=client.secret,
        redirect_url=client.redirect_uris[0],
        ca_file=provider.ca,
    )

    def request(query: str = "", cookie: str = "") -> Request:
        headers = [(b"cookie", f"{PENDING_COOKIE}={cookie}".encode())] if cookie else []
        return Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/",
                "query_string": query.encode(),
                "headers": headers,
            }
        )

    started = await signin.start(request(), "/console/")
    cookie = started.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    person = provider.people[role]
    callback = await asyncio.to_thread(
        browser_sign_in,
        started.headers["location"],
        provider.issuer,
        provider.ca,
        person.username,
        person.password,
    )
    return (await signin.finish(request(urlsplit(callback).query, cookie))).token


async def test_the_console_acts_with_the_steward_s_own_token(
    oidc_provider: OpenIdProvider, control_plane: ControlPlane, chart: Path
) -> None:
    token = await _console_sign_in(oidc_provider, "steward2")
    frank = username(oidc_provider, "steward2")
    approval = yaml.safe_load(approval_yaml("by-frank-in-the-console", frank))
    with httpx.Client(
        base_url=control_plane.server, verify=trusting(control_plane.ca), timeout=10
    ) as client:
        made = client.post(APPROVALS, json=approval, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.text
    assert made.json()["spec"]["approver"] == frank


async def test_the_station_api_reviews_oidc_tokens_with_the_api_server(
    oidc_provider: OpenIdProvider,
    control_plane: ControlPlane,
    chart: Path,
    signed_in: dict[str, Path],
    tmp_path: Path,
) -> None:
    """IDENTITY_MODE=kubernetes with the chart's station-API ServiceAccount: TokenReview
    accepts the provider's ID tokens, SubjectAccessReview applies the chart's RBAC."""
    api_kubeconfig = token_kubeconfig(
        control_plane,
        mint_token(control_plane, SYSTEM_NS, API_ACCOUNT),
        API_ACCOUNT,
        tmp_path / "api.kubeconfig",
    )
    identities = KubernetesIdentities(
        Settings(identity_mode="kubernetes", kubeconfig=api_kubeconfig)
    )
    try:
        decided: dict[str, tuple[bool, bool]] = {}
        for role in ("steward", "researcher", "nobody"):
            who = await identities.authenticate(cached_id_token(signed_in[role].parent))
            assert who.username == username(oidc_provider, role)
            decided[role] = (
                await identities.allowed(who, "release", REQUESTS_NS, "km-oidc", None),
                await identities.allowed(who, "get", REQUESTS_NS, "km-oidc", "results"),
            )
        console_token = await _console_sign_in(oidc_provider, "steward")
        console_user = await identities.authenticate(console_token)
        assert console_user.username == username(oidc_provider, "steward")
        assert "oidc:pht-stewards" in console_user.groups
    finally:
        await identities.close()
    assert decided == {
        "steward": (True, True),
        "researcher": (False, True),
        "nobody": (False, False),
    }
