"""OpenID Connect ID tokens as the station's clients check them (``pht login`` and the steward
console): PKCE challenges, and an ID token's signature, issuer, audience, expiry and nonce.

Finding the provider's signing key is the caller's (each fetches the provider's JWKS its own
way); everything after that is here, so the command line and the console refuse the same
tokens for the same reasons.
"""

import base64
import hashlib
import hmac
from typing import Any, Final

import jwt

#: Only signatures with the provider's public key count: an HMAC "signature" keyed with the
#: client secret, or none at all, is refused.
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Clock difference tolerated between the provider and this machine.
LEEWAY_SECONDS: Final = 30


class IdTokenRefused(ValueError):
    """The ID token does not hold; the message is one line, safe to show."""


def b64url(data: bytes) -> str:
    """Base64url without padding, as OAuth writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def signing_key_id(id_token: str) -> tuple[str, str | None]:
    """The token's signature algorithm (only asymmetric ones) and the ``kid`` of its key."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as error:
        raise IdTokenRefused("the ID token is malformed") from error
    algorithm = header.get("alg")
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        raise IdTokenRefused(f"the ID token's signature algorithm is not accepted ({algorithm})")
    kid = header.get("kid")
    return str(algorithm), kid if isinstance(kid, str) else None


def verified_claims(
    id_token: str,
    key: Any,
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
) -> dict[str, Any]:
    """The claims of ``id_token`` once its signature (by ``key``, a provider's public key),
    issuer, audience (and ``azp`` when several), expiry and ``nonce`` (when given) hold."""
    algorithm, _ = signing_key_id(id_token)
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise IdTokenRefused("the ID token has expired") from error
    except jwt.InvalidAudienceError as error:
        raise IdTokenRefused("the ID token is meant for another application") from error
    except jwt.InvalidIssuerError as error:
        raise IdTokenRefused("the ID token comes from another issuer") from error
    except jwt.InvalidSignatureError as error:
        raise IdTokenRefused("the ID token's signature does not verify") from error
    except jwt.PyJWTError as error:
        raise IdTokenRefused("the ID token is not valid") from error
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenRefused("the ID token is meant for another application")
    sent = str(claims.get("nonce", "")).encode()
    if nonce is not None and not hmac.compare_digest(sent, nonce.encode()):
        raise IdTokenRefused("the ID token belongs to another sign-in attempt (nonce)")
    return claims
