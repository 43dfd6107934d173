"""One provenance record: its fields and its canonical JSON.

The record's hash (:func:`~pht_station_api.provenance.graphs.record_hash`) covers its canonical
RDF, which includes the canonical JSON of every field and the previous record's hash, so a
record cannot be edited, dropped or moved without breaking every hash after it. Details are
bounded scalars only: result values and patient data never enter the chain (callers pass rule
names, counts, hashes and identifiers).
"""

import math
from dataclasses import dataclass, field
from typing import Any

from pht_contract.hashing import canonical_json, sha256_hex
from pht_contract.wire import DetailValue, ProvenanceKind

#: The hash a chain's first record points back to.
GENESIS_HASH = "0" * 64
MAX_DETAILS = 32
MAX_DETAIL_KEY = 64
MAX_DETAIL_TEXT = 1024
MAX_ACTOR = 253


class InvalidRecordError(ValueError):
    """A record that may not enter the chain (unbounded or non-scalar details)."""


@dataclass(frozen=True)
class ProvenanceRecord:
    seq: int
    kind: ProvenanceKind
    train_uid: str | None
    actor: str
    at: str
    event_id: str
    details: dict[str, DetailValue] = field(default_factory=dict)
    previous_hash: str = GENESIS_HASH

    def canonical(self) -> dict[str, Any]:
        """The exact value that is hashed (and stored verbatim next to the RDF)."""
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "trainUid": self.train_uid,
            "actor": self.actor,
            "at": self.at,
            "eventId": self.event_id,
            "details": dict(self.details),
            "previousHash": self.previous_hash,
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.canonical())

    def legacy_hash(self) -> str:
        """The hash of records written before canonical RDF hashing: the canonical JSON's."""
        return sha256_hex(self.canonical_bytes())

    @classmethod
    def from_canonical(cls, value: Any) -> "ProvenanceRecord":
        """Rebuild a record from its canonical JSON; raises ``InvalidRecordError`` if malformed."""
        try:
            return cls(
                seq=int(value["seq"]),
                kind=ProvenanceKind(value["kind"]),
                train_uid=value["trainUid"],
                actor=str(value["actor"]),
                at=str(value["at"]),
                event_id=str(value["eventId"]),
                details=check_details(value["details"]),
                previous_hash=str(value["previousHash"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRecordError(f"malformed record: {exc}") from exc


def check_text(name: str, value: str | None) -> None:
    """Lone surrogates cannot be encoded as UTF-8, so they could not be hashed or stored."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRecordError(f"{name} is not valid Unicode text") from None


def check_fields(
    actor: str, train_uid: str | None, event_id: str | None, at: str | None, details: Any
) -> dict[str, DetailValue]:
    """Everything a record may hold, checked before anything is written; the checked details."""
    if not actor or len(actor) > MAX_ACTOR:
        raise InvalidRecordError("actor must be 1-253 characters")
    for name, text in (("actor", actor), ("train uid", train_uid), ("event id", event_id)):
        check_text(name, text)
    check_text("time", at)
    return check_details(details)


def check_details(details: Any) -> dict[str, DetailValue]:
    """Accept only a small dict of bounded scalars, so nothing bulky can ride in the chain."""
    if not isinstance(details, dict):
        raise InvalidRecordError("details must be an object")
    if len(details) > MAX_DETAILS:
        raise InvalidRecordError(f"at most {MAX_DETAILS} details")
    checked: dict[str, DetailValue] = {}
    for key, value in details.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_DETAIL_KEY:
            raise InvalidRecordError("detail keys are strings of 1-64 characters")
        check_text("a detail key", key)
        if isinstance(value, str):
            check_text(f"detail {key!r}", value)
            if len(value) > MAX_DETAIL_TEXT:
                raise InvalidRecordError(f"detail {key!r} is longer than {MAX_DETAIL_TEXT}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRecordError(f"detail {key!r} is not a finite number")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidRecordError(f"detail {key!r} is not a scalar")
        checked[key] = value
    return checked
