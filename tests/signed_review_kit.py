"""Reviewer keys and signed image reviews for the tests of every component that judges them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pht_contract.policies import ImageReview, TrustedReviewer
from pht_contract.reviewerkeys import SigningKey, load_private_key
from pht_contract.signedreviews import sign_review

Algorithm = Literal["ecdsa-p256", "ed25519"]
ALGORITHMS: tuple[Algorithm, ...] = ("ecdsa-p256", "ed25519")
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(algorithm: Algorithm = "ecdsa-p256") -> PrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signing_key(key: PrivateKey) -> SigningKey:
    return load_private_key(private_pem(key))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def review_of(
    digest: str,
    *,
    start_days: int = -1,
    end_days: int = 30,
    reviewer: str = "Consortium review board",
) -> ImageReview:
    """A review of ``digest`` dated ``start_days`` from now, expiring ``end_days`` from now."""
    now = datetime.now(UTC)
    return ImageReview(
        digest=digest,
        reviewer=reviewer,
        reviewed_at=iso(now + timedelta(days=start_days)),
        expires_at=iso(now + timedelta(days=end_days)),
        notes="read the code: aggregate tables only",
    )


def signed(digest: str, key: PrivateKey, image: str = "ghcr.io/pht/km", **when: Any) -> str:
    """An envelope of a review of ``digest`` signed with ``key`` (our signer)."""
    return sign_review(review_of(digest, **when), image, signing_key(key))


#: The steward who adds the reviewer keys of these tests to a policy.
KEY_ADDED_BY = "steward@maastro.example"


def trusted(
    key: PrivateKey, name: str = "Consortium review board", expires_days: int | None = None
) -> TrustedReviewer:
    expires = None if expires_days is None else iso(datetime.now(UTC) + timedelta(expires_days))
    return TrustedReviewer(
        name=name, added_by=KEY_ADDED_BY, public_key=public_pem(key), expires_at=expires
    )
