"""Signed image reviews under attack: what a hostile researcher, algorithm author or key holder
may try in order to have results released without a steward, and what the station makes of it.

A signed review that counts releases data, so every way to make one count that a trusted
reviewer did not sign must end in a state other than ``Valid``.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import ValidationError
from signed_review_kit import (
    ALGORITHMS,
    Algorithm,
    iso,
    new_key,
    public_pem,
    signed,
    signing_key,
    trusted,
)

from pht_contract.hashing import spec_hash
from pht_contract.policies import DisclosurePolicy, TrustedReviewer
from pht_contract.reviewerkeys import ReviewerKeyError, SigningKey, load_public_key
from pht_contract.signedreviews import (
    MAX_SIGNATURES,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    SignedReviewError,
    SignedReviewState,
    check_signed_review,
    pae,
    parse_signed_review,
)
from pht_contract.trains import TrainSpec

DIGEST = "sha256:" + "a" * 64
NOW = datetime.now(UTC)
#: The order of P-256's group: an ECDSA signature (r, s) also verifies as (r, n - s).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: Ed25519's neutral point, encoded.
NEUTRAL = bytes([1]) + bytes(31)


def _predicate(**changes: Any) -> dict[str, Any]:
    predicate: dict[str, Any] = {
        "reviewer": "Consortium review board",
        "reviewedAt": iso(NOW - timedelta(days=1)),
        "expiresAt": iso(NOW + timedelta(days=30)),
        "notes": "read the code: aggregate tables only",
    }
    predicate.update(changes)
    return {k: v for k, v in predicate.items() if v is not None}


def _statement(
    digest: dict[str, str] | None = None, subjects: int = 1, **predicate: Any
) -> dict[str, Any]:
    subject = {"name": "ghcr.io/pht/km", "digest": digest or {"sha256": DIGEST[7:]}}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject] * subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": _predicate(**predicate),
    }


def _envelope(payload: bytes, key: SigningKey, kind: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """A DSSE envelope of exactly ``payload``, properly signed over its PAE by ``key``."""
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": kind,
        "signatures": [
            {"keyid": key.key_id, "sig": base64.b64encode(key.sign(pae(kind, payload))).decode()}
        ],
    }


def _signed_text(payload: bytes, key: Any) -> str:
    return json.dumps(_envelope(payload, signing_key(key)))


def _state(text: str, *keys: TrustedReviewer, digest: str | None = DIGEST) -> SignedReviewState:
    return check_signed_review(text, keys, digest, NOW).state


def _with_signature(text: str, signature: bytes, keyid: str = "") -> str:
    envelope = json.loads(text)
    envelope["signatures"] = [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}]
    return json.dumps(envelope)


# --- signatures and keys --------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "signature",
    [b"\x00", b"\x30\x00", bytes(64), b"\xff" * 72, NEUTRAL + bytes(32)],
    ids=["zero-byte", "empty-der", "zeros", "ones", "neutral-and-zero"],
)
def test_a_degenerate_signature_counts_for_nothing_and_raises_nothing(
    algorithm: Algorithm, signature: bytes
) -> None:
    key = new_key(algorithm)
    forged = _with_signature(signed(DIGEST, key), signature, signing_key(key).key_id)
    assert _state(forged, trusted(key)) == SignedReviewState.INVALID_SIGNATURE


def test_an_empty_signature_is_malformed() -> None:
    key = new_key()
    envelope = json.loads(signed(DIGEST, key))
    envelope["signatures"] = [{"keyid": "", "sig": ""}]
    assert _state(json.dumps(envelope), trusted(key)) == SignedReviewState.MALFORMED


def test_an_ecdsa_signature_in_raw_form_does_not_verify() -> None:
    key = new_key()
    text = signed(DIGEST, key)
    r, s = decode_dss_signature(base64.b64decode(json.loads(text)["signatures"][0]["sig"]))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert _state(_with_signature(text, raw), trusted(key)) == SignedReviewState.UNTRUSTED_KEY


def test_a_high_s_twin_of_a_real_signature_is_the_same_review_under_the_same_statement() -> None:
    """ECDSA lets anyone turn (r, s) into (r, n - s): the twin verifies, so it must not be
    more than the review its signer made; the record's statement hash stays the signer's."""
    key = new_key()
    text = signed(DIGEST, key)
    r, s = decode_dss_signature(base64.b64decode(json.loads(text)["signatures"][0]["sig"]))
    twin = _with_signature(text, encode_dss_signature(r, P256_ORDER - s))
    original, copied = (check_signed_review(t, [trusted(key)], DIGEST, NOW) for t in (text, twin))
    assert original.state == copied.state == SignedReviewState.VALID
    assert original.review is not None and copied.review is not None
    assert copied.review.review == original.review.review
    assert copied.review.payload_sha256 == original.review.payload_sha256
    assert copied.review.sha256 != original.review.sha256


def test_an_ecdsa_signature_naming_an_ed25519_key_is_judged_by_the_key_that_signed() -> None:
    board, other = new_key("ecdsa-p256"), new_key("ed25519")
    text = _with_signature(
        signed(DIGEST, board),
        base64.b64decode(json.loads(signed(DIGEST, board))["signatures"][0]["sig"]),
        signing_key(other).key_id,
    )
    only_other = check_signed_review(text, [trusted(other, "other")], DIGEST, NOW)
    assert only_other.state == SignedReviewState.INVALID_SIGNATURE
    both = check_signed_review(text, [trusted(other, "other"), trusted(board)], DIGEST, NOW)
    assert both.state == SignedReviewState.VALID
    assert both.key_id == signing_key(board).key_id and both.signer is not None
    assert both.signer.name == "Consortium review board"


def _spki_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


def _p256_der() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _ed25519_der(raw: bytes) -> bytes:
    return ed25519.Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "der",
    [
        _p256_der()[:-64] + (1).to_bytes(32, "big") * 2,
        bytes.fromhex("3018301306072a8648ce3d020106082a8648ce3d03010703020000"),
    ],
    ids=["point-off-the-curve", "point-at-infinity"],
)
def test_a_p256_key_that_is_not_a_point_of_the_curve_is_refused(der: bytes) -> None:
    with pytest.raises(ReviewerKeyError, match="could not be read"):
        load_public_key(_spki_pem(der))


P25519 = 2**255 - 19
SMALL_ORDER_Y = {
    "neutral": 1,
    "order-2": P25519 - 1,
    "order-4": 0,
    "order-8": int.from_bytes(
        bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
    ),
    "order-8-other": int.from_bytes(
        bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), "little"
    ),
    "neutral-not-canonical": P25519 + 1,
    "order-4-not-canonical": P25519,
}


@pytest.mark.parametrize("sign", [0, 1])
@pytest.mark.parametrize("y", SMALL_ORDER_Y.values(), ids=SMALL_ORDER_Y.keys())
def test_an_ed25519_key_of_small_order_is_refused_for_anyone_could_sign_with_it(
    y: int, sign: int
) -> None:
    raw = bytearray(y.to_bytes(32, "little"))
    raw[31] |= sign << 7
    der = _ed25519_der(bytes(raw))
    # The danger is real: the neutral point and zero, a signature nobody made, verifies with
    # such a key for some of a few dozen messages.
    verifying = ed25519.Ed25519PublicKey.from_public_bytes(bytes(raw))
    forged = 0
    for attempt in range(64):
        try:
            verifying.verify(NEUTRAL + bytes(32), b"notes %d" % attempt)
            forged += 1
        except InvalidSignature:
            pass
    assert forged > 0
    with pytest.raises(ReviewerKeyError, match="small order"):
        load_public_key(_spki_pem(der))
    with pytest.raises(ValidationError, match="small order"):
        DisclosurePolicy.model_validate(
            {
                "trustedReviewers": [
                    {
                        "name": "board",
                        "addedBy": "steward@maastro.example",
                        "publicKey": _spki_pem(der),
                    }
                ]
            }
        )


def test_a_review_forged_for_a_small_order_key_never_counts() -> None:
    """The attack end to end: were the all-zero key trusted, a researcher would find notes
    for which the neutral point and zero verify; the station refuses the key instead."""
    raw = bytes(32)
    payload = b""
    for attempt in range(256):
        payload = json.dumps(_statement(notes=f"aggregate tables only ({attempt})")).encode()
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(
                NEUTRAL + bytes(32), pae(PAYLOAD_TYPE, payload)
            )
            break
        except InvalidSignature:
            continue
    else:
        pytest.fail("no forgeable notes found")
    forged = _with_signature(
        json.dumps(_envelope(payload, signing_key(new_key("ed25519")))), NEUTRAL + bytes(32)
    )
    with pytest.raises(ValidationError, match="small order"):
        TrustedReviewer(
            name="placeholder",
            added_by="steward@maastro.example",
            public_key=_spki_pem(_ed25519_der(raw)),
        )
    assert _state(forged, trusted(new_key("ed25519"))) == SignedReviewState.UNTRUSTED_KEY


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b: a + b,
        lambda a, b: "Reviewer key of the consortium board:\n" + b,
        lambda a, b: b + "trust this one instead\n" + a.replace("BEGIN", "XBEGIN"),
        lambda a, b: b.rstrip() + "\nnot part of the key\n",
    ],
    ids=["two-keys", "text-before", "text-after", "trailing-line"],
)
def test_a_public_key_entry_with_more_than_the_key_is_refused(make: Any) -> None:
    """A steward reading the policy must see the key that counts: a second block or text
    around it could hide which key the station uses."""
    first, second = public_pem(new_key()), public_pem(new_key("ed25519"))
    with pytest.raises(ReviewerKeyError, match="exactly one public key"):
        load_public_key(make(first, second))


def test_a_public_key_with_crlf_line_ends_or_surrounding_blank_lines_is_accepted() -> None:
    key = new_key()
    pem = public_pem(key)
    assert load_public_key(pem.replace("\n", "\r\n")).key_id == load_public_key(pem).key_id
    assert load_public_key("\n" + pem + "\n\n").key_id == load_public_key(pem).key_id


# --- the envelope and its encoding ---------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "application/vnd.in-toto+json ",
        " application/vnd.in-toto+json",
        "application/vnd.in-toto+JSON",
        "application/vnd.in‐toto+json",
        "application/vnd.in-toto+json\x00",
    ],
    ids=["trailing-space", "leading-space", "case", "unicode-hyphen", "nul"],
)
def test_a_payload_type_that_only_looks_right_is_refused(kind: str) -> None:
    key = new_key()
    text = json.dumps(_envelope(json.dumps(_statement()).encode(), signing_key(key), kind))
    assert _state(text, trusted(key)) == SignedReviewState.MALFORMED


def test_pae_lengths_keep_the_type_and_payload_apart() -> None:
    """Moving bytes between the type and the payload changes the PAE: no signature carries."""
    assert pae("ab", b"c") != pae("a", b"bc")
    assert pae(PAYLOAD_TYPE, b"x") == b"DSSEv1 28 application/vnd.in-toto+json 1 x"
    assert pae("é", b"") == b"DSSEv1 2 \xc3\xa9 0 "


def test_the_payload_may_be_base64_or_base64url_but_not_spaced_out() -> None:
    key = new_key("ed25519")
    payload = json.dumps(_statement(notes="aggregate tables only ~~~ ???")).encode()
    envelope = _envelope(payload, signing_key(key))
    for variant in (base64.b64encode(payload), base64.urlsafe_b64encode(payload)):
        envelope["payload"] = variant.decode()
        assert _state(json.dumps(envelope), trusted(key)) == SignedReviewState.VALID
    encoded = base64.b64encode(payload).decode()
    for spaced in (
        encoded[:8] + "\n" + encoded[8:],
        " " + encoded,
        encoded[:8] + "." + encoded[8:],
    ):
        envelope["payload"] = spaced
        assert _state(json.dumps(envelope), trusted(key)) == SignedReviewState.MALFORMED


def test_two_envelopes_one_after_the_other_are_not_an_envelope() -> None:
    key = new_key()
    text = signed(DIGEST, key)
    assert _state(text + text, trusted(key)) == SignedReviewState.MALFORMED
    assert _state(f"[{text}, {text}]", trusted(key)) == SignedReviewState.MALFORMED


def test_an_envelope_that_names_a_field_twice_is_refused() -> None:
    """Which of two ``payload`` (or ``payloadType``) values a reader takes is the reader's
    choice: a signed review says each thing once."""
    key, other = new_key(), new_key()
    mine = signed(DIGEST, key).rstrip().removesuffix("}")
    theirs = json.loads(signed("sha256:" + "b" * 64, other))
    doubled = mine + f', "payload": {json.dumps(theirs["payload"])}}}'
    with pytest.raises(SignedReviewError, match="'payload' appears twice"):
        parse_signed_review(doubled)
    assert _state(doubled, trusted(key), trusted(other, "other")) == SignedReviewState.MALFORMED


@pytest.mark.parametrize(
    "doubled",
    [
        '"predicate": {"reviewer": "board", "reviewer": "someone else"}',
        '"subject": [], "subject": []',
        '"digest": {"sha256": "x", "sha256": "y"}',
    ],
    ids=["reviewer", "subject", "digest"],
)
def test_a_signed_statement_that_names_a_field_twice_is_refused(doubled: str) -> None:
    key = new_key()
    statement = json.dumps(_statement())
    name = doubled.split('"')[1]
    first = json.dumps(_statement()[name]) if name != "digest" else ""
    if name == "digest":
        payload = statement.replace(
            '"digest": {"sha256": "' + DIGEST[7:] + '"}',
            '"digest": {"sha256": "' + DIGEST[7:] + '", "sha256": "' + "b" * 64 + '"}',
        )
    elif name == "subject":
        payload = statement.replace(
            '"subject": ' + first, '"subject": ' + first + ', "subject": []'
        )
    else:
        payload = statement.replace('"reviewer": ', '"reviewer": "someone else", "reviewer": ')
    assert payload != statement
    text = _signed_text(payload.encode(), key)
    with pytest.raises(SignedReviewError, match="appears twice"):
        parse_signed_review(text)
    assert _state(text, trusted(key)) == SignedReviewState.MALFORMED


def test_an_error_names_a_stranger_field_briefly_and_printably() -> None:
    """A field name is the author's text: the admission message repeats a short, printable
    part of it, never kilobytes or control characters."""
    key = new_key()
    statement = _statement()
    statement["predicate"]["x" * 5000 + "\n\x1b[31m"] = 1
    text = _signed_text(json.dumps(statement).encode(), key)
    with pytest.raises(SignedReviewError) as refused:
        parse_signed_review(text)
    message = str(refused.value)
    assert len(message) < 200 and "\n" not in message and "\x1b" not in message
    assert "Extra inputs are not permitted" in message


# --- the statement ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "subjects"),
    [
        ({"sha256": DIGEST[7:].upper()}, 1),
        ({"SHA256": DIGEST[7:]}, 1),
        ({"sha512": "a" * 128}, 1),
        ({"sha256": "sha256:" + DIGEST[7:]}, 1),
        ({"sha256": DIGEST[7:]}, 2),
    ],
    ids=["upper-hex", "upper-algorithm", "other-algorithm-only", "prefixed", "two-subjects"],
)
def test_a_subject_not_exactly_one_lowercase_sha256_is_malformed(
    digest: dict[str, str], subjects: int
) -> None:
    key = new_key()
    text = _signed_text(json.dumps(_statement(digest, subjects)).encode(), key)
    assert _state(text, trusted(key)) == SignedReviewState.MALFORMED


def test_another_algorithm_beside_sha256_cannot_change_the_image() -> None:
    key = new_key()
    digest = {"sha256": "b" * 64, "sha512": "a" * 128}
    text = _signed_text(json.dumps(_statement(digest)).encode(), key)
    assert _state(text, trusted(key)) == SignedReviewState.OTHER_IMAGE


@pytest.mark.parametrize(
    "change",
    [
        {"reviewedAt": 1764500000},
        {"reviewer": 7},
        {"notes": ["read"]},
        {"digest": DIGEST},
        {"approved": True},
        {"expiresAt": None},
    ],
    ids=["number-date", "number-reviewer", "list-notes", "digest-in-predicate", "extra", "no-end"],
)
def test_a_predicate_of_the_wrong_shape_is_malformed(change: dict[str, Any]) -> None:
    key = new_key()
    statement = _statement()
    statement["predicate"].update(change)
    statement["predicate"] = {k: v for k, v in statement["predicate"].items() if v is not None}
    text = _signed_text(json.dumps(statement).encode(), key)
    assert _state(text, trusted(key)) == SignedReviewState.MALFORMED


def test_a_statement_with_extra_fields_is_malformed() -> None:
    key = new_key()
    statement = {**_statement(), "releaseWithoutSteward": True}
    assert _state(_signed_text(json.dumps(statement).encode(), key), trusted(key)) == (
        SignedReviewState.MALFORMED
    )


# --- time ---------------------------------------------------------------------------


def _dated(key: Any, reviewed: str, expires: str) -> SignedReviewState:
    statement = _statement(reviewedAt=reviewed, expiresAt=expires)
    return _state(_signed_text(json.dumps(statement).encode(), key), trusted(key))


@pytest.mark.parametrize(
    ("reviewed", "expires"),
    [
        ((NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"), iso(NOW + timedelta(days=9))),
        (iso(NOW - timedelta(days=1)), (NOW + timedelta(days=9)).strftime("%Y-%m-%d")),
        (iso(NOW - timedelta(days=1)), (NOW + timedelta(days=9)).strftime("%Y%m%dT%H%M%SZ")),
        (iso(NOW - timedelta(days=1)), iso(NOW + timedelta(days=9)).replace("T", " ")),
        (iso(NOW - timedelta(days=1)), f"{NOW.year}-12-31T23:59:60Z"),
    ],
    ids=["no-offset", "date-only", "basic-format", "space", "leap-second"],
)
def test_a_date_that_is_not_rfc_3339_with_an_offset_is_malformed(
    reviewed: str, expires: str
) -> None:
    """A date without an offset would be read as UTC: a reviewer east of Greenwich would
    have signed a review that counts hours longer than they meant."""
    assert _dated(new_key(), reviewed, expires) == SignedReviewState.MALFORMED


def test_an_offset_is_honoured() -> None:
    key = new_key()
    # An hour from now, written in UTC+14: not yet valid, however it is spelled.
    ahead = (NOW + timedelta(hours=1)).astimezone(timezone(timedelta(hours=14)))
    reviewed = ahead.strftime("%Y-%m-%dT%H:%M:%S+14:00")
    assert _dated(key, reviewed, iso(NOW + timedelta(days=9))) == SignedReviewState.NOT_YET_VALID
    # An hour ago, written in UTC-12: valid, although its clock reading is half a day behind.
    behind = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-12)))
    reviewed = behind.strftime("%Y-%m-%dT%H:%M:%S-12:00")
    assert _dated(key, reviewed, iso(NOW + timedelta(days=9))) == SignedReviewState.VALID


@pytest.mark.parametrize(
    ("reviewed", "expires", "state"),
    [
        (NOW + timedelta(days=3650), NOW + timedelta(days=3700), SignedReviewState.NOT_YET_VALID),
        (NOW - timedelta(days=10), NOW - timedelta(days=20), SignedReviewState.MALFORMED),
        (NOW - timedelta(days=1), NOW + timedelta(days=400), SignedReviewState.MALFORMED),
        (NOW - timedelta(days=400), NOW - timedelta(days=35), SignedReviewState.REVIEW_EXPIRED),
    ],
    ids=["far-future", "ends-before-it-starts", "longer-than-366-days", "long-expired"],
)
def test_dates_that_would_stretch_a_review_do_not(
    reviewed: datetime, expires: datetime, state: SignedReviewState
) -> None:
    assert _dated(new_key(), iso(reviewed), iso(expires)) == state


def test_a_review_counts_only_until_the_earlier_of_its_expiry_and_the_key_s() -> None:
    key = new_key()
    text = signed(DIGEST, key, end_days=30)
    short_key = trusted(key, expires_days=2)
    check = check_signed_review(text, [short_key], DIGEST, NOW)
    assert check.state == SignedReviewState.VALID and check.until == short_key.expires_at
    later = check_signed_review(text, [short_key], DIGEST, NOW + timedelta(days=3))
    assert later.state == SignedReviewState.KEY_EXPIRED
    long_key = trusted(key, expires_days=300)
    check = check_signed_review(text, [long_key], DIGEST, NOW)
    assert check.review is not None and check.until == check.review.review.expires_at


# --- size and work ------------------------------------------------------------------


def test_the_most_signatures_against_the_most_keys_is_judged_quickly() -> None:
    """Four signatures by strangers, sixteen trusted keys: every pair is tried, and the whole
    check still takes a fraction of a second."""
    keys = [trusted(new_key(ALGORITHMS[i % 2]), name=f"board {i}") for i in range(16)]
    policy = DisclosurePolicy(trusted_reviewers=keys)
    strangers = [signing_key(new_key(ALGORITHMS[i % 2])) for i in range(MAX_SIGNATURES)]
    payload = json.dumps(_statement(notes="n" * 2000)).encode()
    envelope = _envelope(payload, strangers[0])
    envelope["signatures"] = [
        {
            "keyid": keys[i].key().key_id,
            "sig": base64.b64encode(s.sign(pae(PAYLOAD_TYPE, payload))).decode(),
        }
        for i, s in enumerate(strangers)
    ]
    started = time.perf_counter()
    check = check_signed_review(json.dumps(envelope), policy.trusted_reviewers, DIGEST, NOW)
    assert check.state == SignedReviewState.INVALID_SIGNATURE
    assert time.perf_counter() - started < 2.0


def test_deeply_nested_json_in_the_predicate_is_malformed_not_a_crash() -> None:
    key = new_key()
    statement = json.dumps(_statement()).replace(
        '"notes": ', '"deep": ' + "[" * 3000 + "]" * 3000 + ', "notes": '
    )
    text = _signed_text(statement.encode(), key)
    assert len(text) < 16 * 1024
    assert _state(text, trusted(key)) == SignedReviewState.MALFORMED


# --- the Train that carries it ------------------------------------------------------


def _train(**changes: Any) -> TrainSpec:
    spec: dict[str, Any] = {
        "image": "ghcr.io/pht/km@" + DIGEST,
        "graphs": ["urn:pht:graph:a"],
        "requester": {"name": "R", "organisation": "maastro", "contact": "r@x.org"},
        "purpose": "p",
    }
    spec.update(changes)
    return TrainSpec.model_validate(spec)


def test_the_signed_review_is_part_of_what_a_steward_approves() -> None:
    """A review swapped after approval changes the spec hash, so the run never starts."""
    first, second = signed(DIGEST, new_key()), signed(DIGEST, new_key())
    hashes = {spec_hash(_train()), spec_hash(_train(signedReview=first))}
    hashes.add(spec_hash(_train(signedReview=second)))
    assert len(hashes) == 3


def test_a_key_listed_twice_under_another_spelling_is_refused() -> None:
    """The same key in a second PEM spelling (CRLF line ends) has the same key id."""
    pem = public_pem(new_key())
    with pytest.raises(ValidationError, match="each key may be listed once"):
        DisclosurePolicy.model_validate(
            {
                "trustedReviewers": [
                    {"name": "board", "addedBy": "steward@maastro.example", "publicKey": pem},
                    {
                        "name": "board again",
                        "addedBy": "steward@maastro.example",
                        "publicKey": pem.replace("\n", "\r\n"),
                    },
                ]
            }
        )
