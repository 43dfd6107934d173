"""The API server's structured authentication configuration (apiserver.config.k8s.io/v1
AuthenticationConfiguration, `--authentication-config`): which OpenID issuers it trusts, for
which audiences, and how a token's claims become a Kubernetes user name and groups.

Client certificates and service-account tokens keep working beside it. The API server watches the
file and applies a changed configuration without a restart.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class OidcTrust:
    """An issuer whose ID tokens the API server accepts.

    The user name is the `email` claim (only when the provider says it is verified) with
    `prefix` in front, the groups the `groups` claim with the same prefix, so no token can name
    a built-in user or group such as ``system:masters``.
    """

    issuer: str
    ca: Path
    audiences: tuple[str, ...]
    prefix: str = "oidc:"
    username_claim: str = "email"
    groups_claim: str = "groups"

    def jwt_authenticator(self) -> dict[str, Any]:
        rules: list[dict[str, str]] = []
        if self.username_claim == "email":
            rules.append(
                {
                    "expression": "has(claims.email_verified) && claims.email_verified == true",
                    "message": "the provider has not verified this email address",
                }
            )
        return {
            "issuer": {
                "url": self.issuer,
                "certificateAuthority": self.ca.read_text(),
                "audiences": list(self.audiences),
                "audienceMatchPolicy": "MatchAny",
            },
            "claimValidationRules": rules,
            "claimMappings": {
                "username": {"claim": self.username_claim, "prefix": self.prefix},
                "groups": {"claim": self.groups_claim, "prefix": self.prefix},
            },
        }


def authentication_configuration(trusted: tuple[OidcTrust, ...]) -> dict[str, Any]:
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [trust.jwt_authenticator() for trust in trusted],
    }


def write_authentication_configuration(trusted: tuple[OidcTrust, ...], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(authentication_configuration(trusted), sort_keys=False))
    return path
