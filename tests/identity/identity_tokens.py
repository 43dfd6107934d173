"""Forged ID tokens for the attacks: the claims of a real one, changed, signed as asked."""

from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pht_sandbox.controlplane.oidcprovider import OpenIdProvider


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def signed_by_provider(provider: OpenIdProvider, claims: dict[str, Any]) -> str:
    """Signed with the provider's own key: everything but the changed claims is genuine."""
    return jwt.encode(
        claims, provider.signing_key_pem, algorithm="RS256", headers={"kid": provider.key_id}
    )


def signed_by_stranger(provider: OpenIdProvider, claims: dict[str, Any]) -> str:
    """Signed with another RSA key under the provider's key id."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": provider.key_id})


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """`alg: none`: no signature at all."""
    return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})


def hmac_signed(claims: dict[str, Any], secret: str, kid: str) -> str:
    """HS256 with a secret the attacker knows (the key confusion attack)."""
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})
