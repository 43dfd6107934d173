"""The console's OpenID Connect sign-in in the chart: console.* becomes the station API's
settings, the client secret comes from a Secret, and the chart turns on no other sign-in."""

from pathlib import Path
from typing import Any

import pytest

from pht_sandbox.controlplane.pki import Authority
from pht_station_api.console.oidc import OidcSignIn, oidc_sign_in
from pht_station_api.settings import Settings

from .rendering import documents, helm_template, one, render_profile

PREFIX = "PHT_API_CONSOLE_"


def _api(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "station-api")
    return pod, container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_without_the_console_the_station_api_gets_no_sign_in() -> None:
    pod, container = _api(documents(render_profile("default")))
    assert not [name for name in _env(container) if name.startswith(PREFIX)]
    assert not [v for v in pod["volumes"] if v["name"].startswith("console")]


def test_the_console_profile_configures_the_oidc_sign_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod, container = _api(documents(render_profile("console")))
    env = _env(container)
    console = {name: value for name, value in env.items() if name.startswith(PREFIX)}
    assert console == {
        "PHT_API_CONSOLE_OIDC_ISSUER": "https://login.hospital.example.org/realms/staff",
        "PHT_API_CONSOLE_OIDC_CLIENT_ID": "pht-console",
        "PHT_API_CONSOLE_OIDC_CLIENT_SECRET_FILE": "/var/run/pht/console-oidc/client-secret",
        "PHT_API_CONSOLE_OIDC_CA_FILE": "/var/run/pht/console-oidc-ca/ca.crt",
        "PHT_API_CONSOLE_OIDC_REDIRECT_URL": (
            "https://station.hospital.example.org/console/signin/callback"
        ),
        "PHT_API_CONSOLE_OIDC_SCOPES": "openid email groups",
        "PHT_API_CONSOLE_OIDC_USERNAME_CLAIM": "email",
        "PHT_API_CONSOLE_NAMESPACES": "pht-requests",  # the station's namespaces
    }
    assert env["PHT_API_IDENTITY_MODE"] == "kubernetes"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["console-oidc"]["secret"] == {
        "secretName": "pht-console-oidc",
        "defaultMode": 0o400,
        "items": [{"key": "client-secret", "path": "client-secret"}],
    }
    assert volumes["console-oidc-ca"]["configMap"]["name"] == "hospital-ca"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["console-oidc"]["readOnly"] and mounts["console-oidc-ca"]["readOnly"]

    # The station API reads these settings into a working sign-in (files as mounted).
    secret = tmp_path / "console-oidc" / "client-secret"
    secret.parent.mkdir()
    secret.write_text("from-the-secret\n")
    ca = Authority(tmp_path / "console-oidc-ca").ca.cert
    for name, value in console.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PHT_API_CONSOLE_OIDC_CLIENT_SECRET_FILE", str(secret))
    monkeypatch.setenv("PHT_API_CONSOLE_OIDC_CA_FILE", str(ca))
    signin = oidc_sign_in(Settings())
    assert isinstance(signin, OidcSignIn)
    assert (signin.issuer, signin.client_id) == (
        "https://login.hospital.example.org/realms/staff",
        "pht-console",
    )


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"console.enabled": "true"}, "console.oidc.issuer: required"),
        ({"console.enabled": "true"}, "console.oidc.clientId: required"),
        ({"console.enabled": "true"}, "console.oidc.clientSecret.existingSecret: required"),
        (
            {"console.enabled": "true", "station.publicBaseUrl": "http://station.example"},
            'callback "http://station.example/console/signin/callback" must be https',
        ),
        (
            {
                "stationApi.extraEnv[0].name": "PHT_API_CONSOLE_LOCAL_USERS_FILE",
                "stationApi.extraEnv[0].value": "/users",
            },
            "PHT_API_CONSOLE_LOCAL_USERS_FILE is set through console.*",
        ),
        (
            {"console.oidc.issuer": "http://login.example"},
            "at '/console/oidc/issuer': 'http://login.example' does not match pattern",
        ),
        (
            {"console.oidc.redirectUrl": "http://station.example/cb"},
            "at '/console/oidc/redirectUrl': 'http://station.example/cb' does not match pattern",
        ),
    ],
)
def test_a_console_without_a_safe_sign_in_is_refused(sets: dict[str, str], message: str) -> None:
    result = helm_template(sets=sets)
    assert result.returncode != 0
    assert message in result.stderr
