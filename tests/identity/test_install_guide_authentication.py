"""The API server configuration docs/install.md shows is the one the real-cluster tests run:
same audiences, claim mappings, prefix and rules (only the issuer and its CA differ)."""

import re
from pathlib import Path
from typing import Any

import yaml

from pht_sandbox.controlplane.authentication import OidcTrust, authentication_configuration
from pht_sandbox.controlplane.oidcprovider import CLI_CLIENT_ID, CONSOLE_CLIENT_ID

INSTALL = Path(__file__).resolve().parents[2] / "docs" / "install.md"


def _documented() -> dict[str, Any]:
    for block in re.findall(r"```yaml\n(.*?)```", INSTALL.read_text(), flags=re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and data.get("kind") == "AuthenticationConfiguration":
            return data
    raise AssertionError("docs/install.md shows no AuthenticationConfiguration")


def _kubeconfig_user() -> dict[str, Any]:
    for block in re.findall(r"```yaml\n(.*?)```", INSTALL.read_text(), flags=re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "users" in data:
            user: dict[str, Any] = data["users"][0]["user"]
            return user
    raise AssertionError("docs/install.md shows no kubeconfig user")


def test_the_documented_configuration_is_the_tested_one(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n...\n")
    documented = _documented()
    issuer = documented["jwt"][0]["issuer"]["url"]
    tested = authentication_configuration(
        (OidcTrust(issuer, ca, (CLI_CLIENT_ID, CONSOLE_CLIENT_ID)),)
    )
    assert documented == tested


def test_the_documented_kubeconfig_user_runs_the_exec_plugin() -> None:
    exec_entry = _kubeconfig_user()["exec"]
    assert exec_entry["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_entry["command"] == "pht"
    assert exec_entry["args"][:2] == ["credentials", "oidc"]
    assert exec_entry["args"][exec_entry["args"].index("--client-id") + 1] == CLI_CLIENT_ID
