"""Canonical bytes and hashes: what approvals, registrations and provenance are bound to."""

import hashlib
import json
from typing import Any

from pht_contract.trains import TrainSpec


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_hash(spec: TrainSpec) -> str:
    """Hash of everything an approval covers: the whole spec except ``suspend``."""
    wire = spec.wire()
    wire.pop("suspend", None)
    return sha256_hex(canonical_json(wire))


def aggregates_hash(spec: TrainSpec) -> str | None:
    """The hash a standing approval names to cover exactly these aggregate declarations, each
    bound to the text of the query it names (by that text's normalised hash): a covered Train
    cannot put another approved text under a name an aggregate reads."""
    if not spec.aggregates:
        return None
    from pht_contract.sparql import query_hash  # parsing SPARQL is heavy; only needed here

    texts = {q.name: q.sparql for q in spec.queries or []}
    named = sorted({a.query for a in spec.aggregates})
    bound = {name: query_hash(texts[name]) if name in texts else None for name in named}
    return sha256_hex(
        canonical_json({"aggregates": [a.wire() for a in spec.aggregates], "queries": bound})
    )


def token_hash(token: str) -> str:
    """The only form in which the station API keeps a run's token."""
    return sha256_hex(token.encode())
