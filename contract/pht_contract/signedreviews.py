"""Signed image reviews: a reviewer's review of one image digest, carried with a Train.

The review is an in-toto Statement v1 whose subject is the image (``digest.sha256``) and whose
predicate (type :data:`PREDICATE_TYPE`) holds the same facts as an entry of ``reviewedImages``:
reviewer, reviewedAt, expiresAt, notes or link. It travels in a DSSE envelope (payloadType
:data:`PAYLOAD_TYPE`), signed over DSSE's pre-authentication encoding (PAE) with an ECDSA P-256
or Ed25519 key. A station counts it when one of its signatures verifies with a key the
station's policy lists in ``trustedReviewers``, whatever key id the signature names (a key id
is only a hint), while the key is trusted and the review counts.
"""

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pht_contract.policies import ImageReview, TrustedReviewer
from pht_contract.reviewerkeys import SigningKey
from pht_contract.times import parse_utc
from pht_contract.trains import MAX_SIGNED_REVIEW_BYTES

PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://pht.health-ai.nl/image-review/v1"
#: The most signatures one envelope may hold.
MAX_SIGNATURES: Final = 4
#: The dates of a signed review: RFC 3339 with an explicit offset (``Z`` or ``±hh:mm``), as
#: the API server requires of ``reviewedImages``; a date without one is not read as UTC.
_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
#: How much of a field name an error message repeats (a name is the envelope author's text).
_MAX_NAMED: Final = 64


class SignedReviewError(ValueError):
    """The text is not a signed image review; the message says what is wrong."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


_Model = TypeVar("_Model", bound=_Strict)


class _Signature(_Strict):
    keyid: str = Field(default="", max_length=128)
    sig: str = Field(min_length=1, max_length=1024)


class _Envelope(_Strict):
    payload: str = Field(min_length=1, max_length=MAX_SIGNED_REVIEW_BYTES)
    payloadType: str = Field(max_length=128)
    signatures: list[_Signature] = Field(min_length=1, max_length=MAX_SIGNATURES)


class _Subject(_Strict):
    name: str = Field(min_length=1, max_length=512)
    digest: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=128)]] = (
        Field(max_length=8)
    )


class _Statement(_Strict):
    type_: str = Field(alias="_type", max_length=128)
    subject: list[_Subject] = Field(min_length=1, max_length=1)
    predicateType: str = Field(max_length=256)
    predicate: dict[str, object]


@dataclass(frozen=True)
class SignedReview:
    """A well-formed signed review, its signatures not yet checked."""

    #: The review's facts; ``digest`` is the subject's.
    review: ImageReview
    #: The image name the statement gives (informational: only the digest counts).
    image_name: str
    payload: bytes
    #: (key id as given, signature bytes) per signature.
    signatures: tuple[tuple[str, bytes], ...]
    #: SHA-256 (hex) of the envelope's text as carried.
    sha256: str
    #: SHA-256 (hex) of the signed statement: the same for every copy of one review, whatever
    #: key ids, base64 spelling or (ECDSA) signature form its envelope carries.
    payload_sha256: str


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SignedReviewError(f"the envelope's {what} is not base64") from None


def _named(part: object) -> str:
    text = "".join(c if c.isprintable() else "?" for c in str(part))
    return text if len(text) <= _MAX_NAMED else text[:_MAX_NAMED] + "…"


def _first_error(exc: ValidationError, where: str) -> SignedReviewError:
    first = exc.errors()[0]
    loc = ".".join(_named(p) for p in first.get("loc", ()))
    why = str(first.get("msg")).removeprefix("Value error, ")
    return SignedReviewError(f"{where}{'.' + loc if loc else ''}: {why}")


def _refuse_duplicate_names(pairs: list[tuple[str, object]]) -> dict[str, object]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise SignedReviewError(f"the name {_named(repeated)!r} appears twice in one object")
    return dict(pairs)


def _unique_names(text: str | bytes, what: str) -> None:
    """Refuse JSON that names a field twice: readers disagree on which value holds, so what
    a reviewer signed must say each fact once."""
    try:
        json.loads(text, object_pairs_hook=_refuse_duplicate_names)
    except SignedReviewError as exc:
        raise SignedReviewError(f"the {what} is ambiguous: {exc}") from None
    except (ValueError, RecursionError):
        return  # not JSON: the strict parser below says so


def _read(model: type[_Model], text: str | bytes, where: str, not_json: str) -> _Model:
    """``text`` as ``model``: each JSON object naming a field once, or the first error."""
    _unique_names(text, where)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        if exc.errors()[0].get("type") == "json_invalid":
            raise SignedReviewError(not_json) from None
        raise _first_error(exc, where) from None


def parse_signed_review(text: str) -> SignedReview:
    """The review a DSSE envelope carries, or :class:`SignedReviewError` saying what is
    wrong. Signatures are decoded, not verified."""
    if len(text.encode()) > MAX_SIGNED_REVIEW_BYTES:
        raise SignedReviewError(f"the envelope exceeds {MAX_SIGNED_REVIEW_BYTES} bytes")
    envelope = _read(_Envelope, text, "envelope", "the signed review is not a JSON DSSE envelope")
    if envelope.payloadType != PAYLOAD_TYPE:
        raise SignedReviewError(f"the envelope's payloadType must be {PAYLOAD_TYPE}")
    payload = _b64(envelope.payload, "payload")
    signatures = tuple((s.keyid, _b64(s.sig, "signature")) for s in envelope.signatures)
    statement = _read(
        _Statement, payload, "statement", "the envelope's payload is not a JSON statement"
    )
    if statement.type_ != STATEMENT_TYPE:
        raise SignedReviewError(f"the statement's _type must be {STATEMENT_TYPE}")
    if statement.predicateType != PREDICATE_TYPE:
        raise SignedReviewError(f"the statement's predicateType must be {PREDICATE_TYPE}")
    subject = statement.subject[0]
    hexdigest = subject.digest.get("sha256", "")
    if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise SignedReviewError("the statement's subject needs digest.sha256 (64 hex digits)")
    if "digest" in statement.predicate:
        raise SignedReviewError("the predicate must not name a digest: the subject does")
    for field in ("reviewedAt", "expiresAt"):
        value = statement.predicate.get(field)
        if isinstance(value, str) and not _RFC3339.fullmatch(value):
            raise SignedReviewError(
                f"the predicate's {field} must be an RFC 3339 timestamp with its offset, "
                f"e.g. 2026-05-01T09:00:00Z"
            )
    try:
        review = ImageReview.model_validate(
            {**statement.predicate, "digest": f"sha256:{hexdigest}"}
        )
    except ValidationError as exc:
        raise _first_error(exc, "predicate") from None
    return SignedReview(
        review=review,
        image_name=subject.name,
        payload=payload,
        signatures=signatures,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    )


def sign_review(review: ImageReview, image_name: str, key: SigningKey) -> str:
    """The DSSE envelope (JSON text) of ``review`` of image ``image_name``, signed by ``key``."""
    predicate = review.wire()
    hexdigest = predicate.pop("digest").removeprefix("sha256:")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": image_name, "digest": {"sha256": hexdigest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(envelope, indent=2) + "\n"


class SignedReviewState(StrEnum):
    """What a station makes of a signed review at one moment, for one image."""

    VALID = "Valid"
    MALFORMED = "Malformed"
    UNTRUSTED_KEY = "UntrustedKey"
    INVALID_SIGNATURE = "InvalidSignature"
    KEY_EXPIRED = "KeyExpired"
    OTHER_IMAGE = "OtherImage"
    REVIEW_EXPIRED = "ReviewExpired"
    NOT_YET_VALID = "NotYetValid"


@dataclass(frozen=True)
class SignedReviewCheck:
    """The verdict on a signed review, with who signed it when a trusted key did."""

    state: SignedReviewState
    message: str
    review: SignedReview | None = None
    signer: TrustedReviewer | None = None
    key_id: str | None = None
    #: When the review stops counting: the earlier of its expiry and the key's.
    until: str | None = None

    @property
    def counts(self) -> bool:
        return self.state == SignedReviewState.VALID


def _trusted_until(reviewer: TrustedReviewer) -> datetime:
    expires = parse_utc(reviewer.expires_at) if reviewer.expires_at else None
    return expires or datetime.max.replace(tzinfo=UTC)


def _earlier(first: str, second: str | None) -> str:
    if second is None:
        return first
    a, b = parse_utc(first), parse_utc(second)
    return second if a is not None and b is not None and b < a else first


def check_signed_review(
    text: str,
    trusted: Sequence[TrustedReviewer],
    digest: str | None,
    moment: datetime,
) -> SignedReviewCheck:
    """Whether the envelope ``text`` is, at ``moment``, a review of image ``digest``
    (``sha256:…``) signed by one of the ``trusted`` keys; the state says why not."""
    try:
        signed = parse_signed_review(text)
    except SignedReviewError as exc:
        return SignedReviewCheck(SignedReviewState.MALFORMED, str(exc))
    message = pae(PAYLOAD_TYPE, signed.payload)
    keys = [(reviewer, reviewer.key()) for reviewer in trusted]
    verified = [
        (reviewer, key)
        for reviewer, key in keys
        if any(key.verifies(signature, message) for _, signature in signed.signatures)
    ]
    if not verified:
        named = {keyid for keyid, _ in signed.signatures}
        if any(key.key_id in named for _, key in keys):
            return SignedReviewCheck(
                SignedReviewState.INVALID_SIGNATURE,
                "the signature does not verify with the trusted key it names: the review "
                "was changed after signing, or signed by another key",
                signed,
            )
        return SignedReviewCheck(
            SignedReviewState.UNTRUSTED_KEY,
            "signed by a key this station does not trust",
            signed,
        )
    current = [(reviewer, key) for reviewer, key in verified if reviewer.counts_at(moment)]
    if not current:
        reviewer, key = verified[0]
        return SignedReviewCheck(
            SignedReviewState.KEY_EXPIRED,
            f"signed by {reviewer.name}, whose key this station trusted until "
            f"{reviewer.expires_at}",
            signed,
            reviewer,
            key.key_id,
        )
    reviewer, key = max(current, key=lambda pair: _trusted_until(pair[0]))
    until = _earlier(signed.review.expires_at, reviewer.expires_at)
    found = SignedReviewCheck(SignedReviewState.VALID, "", signed, reviewer, key.key_id, until)
    if digest is None or signed.review.digest != digest:
        return _with(found, SignedReviewState.OTHER_IMAGE, "the signed review is of another image")
    if not signed.review.counts_at(moment):
        expires = parse_utc(signed.review.expires_at)
        if expires is not None and expires <= moment:
            return _with(
                found,
                SignedReviewState.REVIEW_EXPIRED,
                f"the signed review expired at {signed.review.expires_at}",
            )
        return _with(
            found,
            SignedReviewState.NOT_YET_VALID,
            f"the signed review is dated {signed.review.reviewed_at}, after now",
        )
    return _with(
        found,
        SignedReviewState.VALID,
        f"reviewed by {signed.review.reviewer}, signed by {reviewer.name}, counts until {until}",
    )


def _with(check: SignedReviewCheck, state: SignedReviewState, message: str) -> SignedReviewCheck:
    return SignedReviewCheck(state, message, check.review, check.signer, check.key_id, check.until)
