"""Signed image reviews: reviewer keys, DSSE envelopes, and every way to forge one.

securesystemslib is the independent peer: it signs envelopes our code must accept and verifies
the envelopes ``sign_review`` makes, for both accepted algorithms.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey
from signed_review_kit import (
    ALGORITHMS,
    Algorithm,
    new_key,
    private_pem,
    public_pem,
    review_of,
    signed,
    signing_key,
    trusted,
)

from pht_contract.conditions import Reason
from pht_contract.evaluation import evaluate
from pht_contract.policies import DisclosurePolicy, StationPolicySpec, TrustedReviewer
from pht_contract.reviewerkeys import ReviewerKeyError, load_private_key, load_public_key
from pht_contract.signedreviews import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    SignedReviewError,
    SignedReviewState,
    check_signed_review,
    pae,
    parse_signed_review,
    sign_review,
)
from pht_contract.trains import MAX_SIGNED_REVIEW_BYTES, TrainSpec

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
NOW = datetime.now(UTC)


def _statement(digest: str = DIGEST, **predicate: Any) -> bytes:
    review = review_of(digest).wire()
    review.pop("digest")
    review.update(predicate)
    return json.dumps(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "ghcr.io/pht/km", "digest": {"sha256": digest[7:]}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": review,
        }
    ).encode()


def _peer_signer(key: Any, keyid: str | None = None) -> CryptoSigner:
    public = SSlibKey.from_crypto(key.public_key(), keyid=keyid)
    return CryptoSigner(key, public)


def _peer_envelope(payload: bytes, *signers: CryptoSigner, kind: str = PAYLOAD_TYPE) -> str:
    envelope = Envelope(payload=payload, payload_type=kind, signatures={})
    for signer in signers:
        envelope.sign(signer)
    return json.dumps(envelope.to_dict())


def _edit(text: str, **fields: Any) -> str:
    envelope = json.loads(text)
    envelope.update(fields)
    return json.dumps(envelope)


def _check(text: str, *keys: TrustedReviewer, digest: str = DIGEST) -> SignedReviewState:
    return check_signed_review(text, keys, digest, NOW).state


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_public_key_is_accepted_and_named_by_the_hash_of_its_der(algorithm: Algorithm) -> None:
    key = new_key(algorithm)
    loaded = load_public_key(public_pem(key))
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (loaded.algorithm, loaded.key_id) == (algorithm, hashlib.sha256(der).hexdigest())


def _certificate(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "review board")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _spki(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: private_pem(new_key()).decode(), "this is a private key"),
        (lambda: private_pem(new_key("ed25519")).decode(), "this is a private key"),
        (lambda: _certificate(ec.generate_private_key(ec.SECP256R1())), "this is a certificate"),
        (lambda: _spki(rsa.generate_private_key(65537, 2048)), "RSA is not accepted"),
        (lambda: _spki(ec.generate_private_key(ec.SECP384R1())), "curve secp384r1"),
        (lambda: "ssh-ed25519 AAAAC3Nza reviewer@board", "-----BEGIN PUBLIC KEY-----"),
        (
            lambda: "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
            "could not be read",
        ),
    ],
    ids=["p256-private", "ed25519-private", "certificate", "rsa", "p384", "ssh", "garbage"],
)
def test_what_is_not_an_accepted_public_key_is_refused_with_a_reason(
    make: Any, message: str
) -> None:
    text = make()
    with pytest.raises(ReviewerKeyError, match=message):
        load_public_key(text)
    with pytest.raises(ValidationError) as refused:
        DisclosurePolicy.model_validate(
            {
                "trustedReviewers": [
                    {"name": "board", "addedBy": "steward@maastro.example", "publicKey": text}
                ]
            }
        )
    assert message in str(refused.value)


def test_a_private_key_pasted_into_the_policy_is_never_repeated_in_the_error() -> None:
    pem = private_pem(new_key()).decode()
    body = "".join(pem.splitlines()[1:-1])
    policy = {
        "organisations": ["maastro"],
        "dataAccess": {"allowedGraphs": ["urn:pht:graph:a"]},
        "disclosure": {
            "trustedReviewers": [
                {"publicKey": pem, "name": "board", "addedBy": "steward@maastro.example"}
            ]
        },
    }
    with pytest.raises(ValidationError) as refused:
        StationPolicySpec.model_validate(policy)
    assert "this is a private key" in str(refused.value)
    for chunk in (body[i : i + 12] for i in range(0, len(body) - 12, 12)):
        assert chunk not in str(refused.value)


def test_a_key_or_a_name_is_listed_once() -> None:
    key = new_key()
    one, other = trusted(key, "board"), trusted(new_key(), "board")
    with pytest.raises(ValidationError, match="name must be unique"):
        DisclosurePolicy(trusted_reviewers=[one, other])
    with pytest.raises(ValidationError, match="each key may be listed once"):
        DisclosurePolicy(trusted_reviewers=[one, trusted(key, "board again")])


def test_a_private_key_file_must_be_an_accepted_unencrypted_private_key() -> None:
    with pytest.raises(ReviewerKeyError, match="this is a public key"):
        load_private_key(public_pem(new_key()).encode())
    rsa_pem = private_pem(rsa.generate_private_key(65537, 2048))  # type: ignore[arg-type,unused-ignore]
    with pytest.raises(ReviewerKeyError, match="RSA is not accepted"):
        load_private_key(rsa_pem)
    encrypted = new_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ReviewerKeyError, match="encrypted"):
        load_private_key(encrypted)


# --- interoperability ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_envelope_securesystemslib_signs_counts(algorithm: Algorithm) -> None:
    key = new_key(algorithm)
    text = _peer_envelope(_statement(), _peer_signer(key))
    check = check_signed_review(text, [trusted(key)], DIGEST, NOW)
    assert check.state == SignedReviewState.VALID, check.message
    assert check.signer is not None and check.signer.name == "Consortium review board"
    assert check.key_id == load_public_key(public_pem(key)).key_id


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_securesystemslib_verifies_the_envelopes_we_sign(algorithm: Algorithm) -> None:
    key = new_key(algorithm)
    text = signed(DIGEST, key)
    envelope = Envelope.from_dict(json.loads(text))
    ours = signing_key(key).key_id
    verified = envelope.verify([SSlibKey.from_crypto(key.public_key(), keyid=ours)], 1)
    assert list(verified) == [ours]
    assert json.loads(envelope.payload)["subject"][0]["digest"] == {"sha256": DIGEST[7:]}
    # The peer refuses it, too, once the payload is changed.
    envelope.payload = envelope.payload.replace(b"aggregate", b"aggregatE")
    with pytest.raises(VerificationError, match="Found: 0"):
        envelope.verify([SSlibKey.from_crypto(key.public_key(), keyid=ours)], 1)


def test_pae_is_the_dsse_encoding() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


# --- attacks -------------------------------------------------------------------------


def test_a_review_of_another_digest_does_not_count() -> None:
    key = new_key()
    assert _check(signed(OTHER, key), trusted(key)) == SignedReviewState.OTHER_IMAGE
    assert _check(signed(DIGEST, key), trusted(key), digest=OTHER) == SignedReviewState.OTHER_IMAGE


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_payload_edited_after_signing_does_not_count(algorithm: Algorithm) -> None:
    key = new_key(algorithm)
    text = signed(OTHER, key)
    payload = base64.b64decode(json.loads(text)["payload"]).replace(
        OTHER[7:].encode(), DIGEST[7:].encode()
    )
    forged = _edit(text, payload=base64.b64encode(payload).decode())
    assert parse_signed_review(forged).review.digest == DIGEST  # well formed, of our image
    assert _check(forged, trusted(key)) == SignedReviewState.INVALID_SIGNATURE


def test_a_changed_payload_type_is_refused() -> None:
    key = new_key()
    forged = _edit(signed(DIGEST, key), payloadType="application/json")
    assert _check(forged, trusted(key)) == SignedReviewState.MALFORMED
    with pytest.raises(SignedReviewError, match="payloadType must be"):
        parse_signed_review(forged)
    # Signed as another type, the signature does not carry over to ours either.
    signer = _peer_signer(key, keyid=signing_key(key).key_id)
    other_type = _peer_envelope(_statement(), signer, kind="application/json")
    assert _check(_edit(other_type, payloadType=PAYLOAD_TYPE), trusted(key)) == (
        SignedReviewState.INVALID_SIGNATURE
    )


def test_a_signature_by_a_key_the_policy_does_not_list_does_not_count() -> None:
    check = check_signed_review(signed(DIGEST, new_key()), [trusted(new_key())], DIGEST, NOW)
    assert (check.state, check.message) == (
        SignedReviewState.UNTRUSTED_KEY,
        "signed by a key this station does not trust",
    )
    assert _check(signed(DIGEST, new_key())) == SignedReviewState.UNTRUSTED_KEY


def test_a_trusted_key_past_its_expiry_does_not_count() -> None:
    key = new_key()
    assert _check(signed(DIGEST, key), trusted(key, expires_days=-1)) == (
        SignedReviewState.KEY_EXPIRED
    )
    current = check_signed_review(signed(DIGEST, key), [trusted(key, expires_days=3)], DIGEST, NOW)
    assert current.counts and current.until is not None
    # The key's expiry comes before the review's: the review counts until the key's.
    assert current.until < review_of(DIGEST).expires_at


def test_an_expired_review_or_one_dated_in_the_future_does_not_count() -> None:
    key = new_key()
    expired = signed(DIGEST, key, start_days=-60, end_days=-1)
    future = signed(DIGEST, key, start_days=2, end_days=60)
    assert _check(expired, trusted(key)) == SignedReviewState.REVIEW_EXPIRED
    assert _check(future, trusted(key)) == SignedReviewState.NOT_YET_VALID


def test_a_trusted_key_id_on_a_signature_by_another_key_does_not_count() -> None:
    board, forger = new_key(), new_key()
    board_id = signing_key(board).key_id
    text = _peer_envelope(_statement(), _peer_signer(forger, keyid=board_id))
    assert json.loads(text)["signatures"][0]["keyid"] == board_id
    assert _check(text, trusted(board)) == SignedReviewState.INVALID_SIGNATURE


def test_of_several_signatures_only_one_by_a_trusted_key_counts() -> None:
    board, stranger, forger = new_key(), new_key("ed25519"), new_key()
    board_id = signing_key(board).key_id
    only_untrusted = _peer_envelope(
        _statement(), _peer_signer(stranger), _peer_signer(forger, keyid=board_id)
    )
    assert len(json.loads(only_untrusted)["signatures"]) == 2
    assert _check(only_untrusted, trusted(board)) != SignedReviewState.VALID
    with_board = _peer_envelope(_statement(), _peer_signer(stranger), _peer_signer(board))
    assert _check(with_board, trusted(board)) == SignedReviewState.VALID


def test_an_oversized_envelope_is_refused() -> None:
    key = new_key()
    text = signed(DIGEST, key).rstrip()
    padded = text + " " * (MAX_SIGNED_REVIEW_BYTES - len(text) + 1)
    with pytest.raises(SignedReviewError, match=f"exceeds {MAX_SIGNED_REVIEW_BYTES} bytes"):
        parse_signed_review(padded)
    assert _check(padded, trusted(key)) == SignedReviewState.MALFORMED
    with pytest.raises(ValidationError, match="signedReview"):
        TrainSpec.model_validate(
            {
                "image": "ghcr.io/pht/km@" + DIGEST,
                "graphs": ["urn:pht:graph:a"],
                "requester": {"name": "R", "organisation": "maastro", "contact": "r@x.org"},
                "purpose": "p",
                "signedReview": padded,
            }
        )


def test_too_many_signatures_are_refused() -> None:
    text = _peer_envelope(_statement(), *(_peer_signer(new_key()) for _ in range(5)))
    with pytest.raises(SignedReviewError, match="signatures"):
        parse_signed_review(text)


# --- admission -----------------------------------------------------------------------


def _spec(example: dict[str, Any], envelope: str, image_digest: str | None = DIGEST) -> TrainSpec:
    spec = dict(example["spec"])
    image = spec["image"].split("@")[0]
    spec["image"] = f"{image}@{image_digest}" if image_digest else image
    spec["signedReview"] = envelope
    return TrainSpec.model_validate(spec)


def _statement_envelope(payload: bytes) -> str:
    return _peer_envelope(payload, _peer_signer(new_key()))


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ("not json", "not a JSON DSSE envelope"),
        (json.dumps({"payload": "e30=", "payloadType": PAYLOAD_TYPE}), "signatures"),
        (
            json.dumps(
                {"payload": "@@", "payloadType": PAYLOAD_TYPE, "signatures": [{"sig": "AA=="}]}
            ),
            "payload is not base64",
        ),
        (_statement_envelope(b"[1, 2"), "payload is not a JSON statement"),
        (
            _statement_envelope(_statement().replace(PREDICATE_TYPE.encode(), b"https://x/v1")),
            "predicateType must be",
        ),
        (_statement_envelope(_statement(notes=None, link=None)), "notes"),
        (
            _statement_envelope(_statement(expiresAt="2020-01-01T00:00:00Z")),
            "expiresAt must be after reviewedAt",
        ),
        (_statement_envelope(_statement(digest=OTHER)), "not of this Train's image"),
    ],
    ids=[
        "not-json",
        "no-signatures",
        "bad-base64",
        "payload-not-json",
        "other-predicate",
        "no-notes",
        "dates",
        "other-digest",
    ],
)
def test_admission_refuses_a_malformed_signed_review_with_its_reason(
    example_policy: dict[str, Any], km_train: dict[str, Any], envelope: str, message: str
) -> None:
    policy = StationPolicySpec.model_validate(example_policy["spec"])
    decision = evaluate(_spec(km_train, envelope), policy)
    assert decision.reason == Reason.INVALID_SIGNED_REVIEW
    assert "spec.signedReview" in decision.message and message in decision.message


def test_admission_refuses_a_signed_review_for_an_image_not_pinned(
    example_policy: dict[str, Any], km_train: dict[str, Any]
) -> None:
    policy = StationPolicySpec.model_validate(
        {**example_policy["spec"], "images": {"requireDigest": False}, "approval": {"mode": "None"}}
    )
    decision = evaluate(_spec(km_train, signed(DIGEST, new_key()), image_digest=None), policy)
    assert decision.reason == Reason.INVALID_SIGNED_REVIEW
    assert "pinned by digest" in decision.message


def test_admission_admits_a_well_formed_review_whatever_its_key(
    example_policy: dict[str, Any], km_train: dict[str, Any]
) -> None:
    policy = StationPolicySpec.model_validate(example_policy["spec"])
    assert evaluate(_spec(km_train, signed(DIGEST, new_key())), policy).admitted


def test_sign_review_round_trips_the_review() -> None:
    key = new_key("ed25519")
    review = review_of(DIGEST)
    parsed = parse_signed_review(sign_review(review, "ghcr.io/pht/km", signing_key(key)))
    assert parsed.review == review and parsed.image_name == "ghcr.io/pht/km"
