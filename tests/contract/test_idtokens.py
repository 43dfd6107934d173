"""ID token checks shared by `pht login` and the steward console: each way a token can be
forged or misused is refused with its own reason, and a genuine one gives its claims."""

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pht_contract.idtokens import (
    IdTokenRefused,
    pkce_challenge,
    signing_key_id,
    verified_claims,
)

ISSUER = "https://login.hospital.example"
CLIENT = "pht-console"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: Any = KEY, algorithm: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "s-1", "iat": now, "exp": now + 300}
    claims |= {"nonce": "n-1", **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": "k1"})


def check(id_token: str, nonce: str | None = "n-1") -> dict[str, Any]:
    return verified_claims(id_token, KEY.public_key(), issuer=ISSUER, client_id=CLIENT, nonce=nonce)


def test_a_genuine_token_gives_its_claims_and_its_key_id() -> None:
    genuine = token()
    assert signing_key_id(genuine) == ("RS256", "k1")
    assert check(genuine)["sub"] == "s-1"
    assert check(token(aud=[CLIENT, "other"], azp=CLIENT))["azp"] == CLIENT


@pytest.mark.parametrize(
    ("forged", "reason"),
    [
        (token(OTHER_KEY), "signature does not verify"),
        (token(iss="https://evil.example"), "another issuer"),
        (token(aud="other-app"), "another application"),
        (token(aud=[CLIENT, "other-app"]), "another application"),  # several: azp must be us
        (token(exp=int(time.time()) - 3600), "has expired"),
        (token(nonce="n-2"), "another sign-in attempt"),
        (token(nonce=None), "another sign-in attempt"),
        (token(sub=None), "not valid"),
        (
            token("the-client-secret-used-as-an-hmac-key", "HS256"),
            "algorithm is not accepted (HS256)",
        ),
        (jwt.encode({"iss": ISSUER}, None, algorithm="none"), "algorithm is not accepted"),
        ("not.a.token", "malformed"),
    ],
)
def test_a_forged_or_misused_token_is_refused_with_its_reason(forged: str, reason: str) -> None:
    with pytest.raises(IdTokenRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check(forged)


def test_pkce_challenge_is_rfc_7636s_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
