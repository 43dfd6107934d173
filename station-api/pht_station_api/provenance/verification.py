"""Checking a chain: every edit, deletion, insertion or reordering shows up as a problem.

Per record: the canonical JSON parses and the stored hash is the hash of the record's canonical
RDF (:func:`~pht_station_api.provenance.graphs.record_hash`). Across the whole store: the quads
it holds are exactly the quads the records write, so a triple added anywhere (to a record, an
agent, a train, another graph), removed or changed is named, whether or not it is one the
canonical JSON repeats. Across records: sequence numbers run 0..n-1 without gaps or duplicates,
and each record carries its predecessor's hash. Against the head published outside the store:
one head per record, each equal to the record's hash, so truncating the chain or appending a
forged record is caught even though the forger can recompute every hash inside the store.

Records written before canonical RDF hashing (no ``pht:hashScheme``) are checked by their
canonical-JSON hash and by the same whole-store comparison; removing the scheme from a newer
record, or adding it to an older one, makes its stored hash wrong.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field

from pht_contract.hashing import sha256_hex
from pht_station_api.provenance import vocabulary as v
from pht_station_api.provenance.graphs import (
    HASH_SCHEME,
    StoredRecord,
    legacy_record_quads,
    normal_form,
    record_hash,
    record_quads,
)
from pht_station_api.provenance.heads import PublishedHead
from pht_station_api.provenance.records import (
    GENESIS_HASH,
    InvalidRecordError,
    ProvenanceRecord,
)

_RECORD_PREFIX = "<" + v.record_iri(0).value.removesuffix("0")


@dataclass(frozen=True)
class ChainProblem:
    #: The record's sequence number (or the published head's), ``None`` for the chain as a whole.
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = "chain" if self.seq is None else f"record {self.seq}"
        return f"{where}: {self.message}"


@dataclass
class VerificationReport:
    records: int
    head: str | None
    published_heads: int | None
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Checked:
    record: ProvenanceRecord
    stored_hash: str
    legacy: bool


def _check_node(entry: StoredRecord) -> tuple[_Checked | None, list[ChainProblem]]:
    seq_text = entry.one(v.PHT_SEQUENCE)
    seq = int(seq_text) if seq_text is not None and seq_text.lstrip("-").isdigit() else None
    canonical = entry.one(v.PHT_CANONICAL)
    stored_hash = entry.one(v.PHT_RECORD_HASH)
    if canonical is None or stored_hash is None or seq is None:
        message = f"{entry.node} lacks (or repeats) its sequence, hash or record"
        return None, [ChainProblem(seq, message)]
    try:
        record = ProvenanceRecord.from_canonical(json.loads(canonical))
    except (ValueError, InvalidRecordError) as exc:
        return None, [ChainProblem(seq, f"canonical record unreadable: {exc}")]
    problems: list[ChainProblem] = []
    schemes = entry.values.get(v.PHT_HASH_SCHEME.value, [])
    legacy = not schemes
    if schemes and schemes != [HASH_SCHEME]:
        problems.append(ChainProblem(seq, f"unknown or repeated hash scheme {schemes}"))
    expected = sha256_hex(canonical.encode()) if legacy else record_hash(record)
    if expected != stored_hash or (legacy and record.legacy_hash() != stored_hash):
        problems.append(ChainProblem(seq, "content does not match its hash (edited)"))
    if entry.node != v.record_iri(record.seq).value or record.seq != seq:
        problems.append(ChainProblem(seq, "sequence number does not match the record (moved)"))
    return _Checked(record, stored_hash, legacy), problems


def _seq_of(line: str) -> int | None:
    """The record a stored quad is about, when its subject is a record node."""
    if not line.startswith(_RECORD_PREFIX):
        return None
    number = line[len(_RECORD_PREFIX) :].split(">", 1)[0]
    return int(number) if number.isdigit() else None


def _predicate(line: str) -> str:
    parts = line.split(" ", 2)
    return parts[1] if len(parts) > 2 else "?"


def _compare_quads(checked: list[_Checked], stored: set[str]) -> list[ChainProblem]:
    """Name every quad the records do not write, and every quad they write that is gone."""
    expected: dict[str, int] = {}
    for item in checked:
        build = legacy_record_quads if item.legacy else record_quads
        for line in normal_form(build(item.record, item.stored_hash)):
            expected.setdefault(line, item.record.seq)
    added: dict[int | None, set[str]] = defaultdict(set)
    missing: dict[int | None, set[str]] = defaultdict(set)
    for line in stored - expected.keys():
        added[_seq_of(line)].add(_predicate(line))
    for line in expected.keys() - stored:
        missing[expected[line]].add(_predicate(line))
    problems = [
        ChainProblem(
            seq, f"triple(s) no record wrote were added or changed: {', '.join(sorted(p))}"
        )
        for seq, p in added.items()
    ]
    problems += [
        ChainProblem(
            seq, f"triple(s) of this record were removed or changed: {', '.join(sorted(p))}"
        )
        for seq, p in missing.items()
    ]
    return problems


def verify_records(
    entries: list[StoredRecord],
    heads: list[PublishedHead] | None,
    stored: set[str] | None = None,
) -> VerificationReport:
    """Check record nodes (any order), the store's quads (when given) and the published heads."""
    problems: list[ChainProblem] = []
    checked: list[_Checked] = []
    for entry in entries:
        item, found = _check_node(entry)
        problems += found
        if item is not None:
            checked.append(item)
    if stored is not None:
        problems += _compare_quads(checked, stored)
    checked.sort(key=lambda item: item.record.seq)
    previous = GENESIS_HASH
    for index, item in enumerate(checked):
        if item.record.seq != index:
            problems.append(
                ChainProblem(
                    item.record.seq,
                    f"expected record {index} here: a record is missing or duplicated",
                )
            )
        if item.record.previous_hash != previous:
            problems.append(
                ChainProblem(item.record.seq, "previous hash does not match (deleted or reordered)")
            )
        previous = item.stored_hash
    head = checked[-1].stored_hash if checked else None
    if heads is not None:
        by_seq = {item.record.seq: item.stored_hash for item in checked}
        for published in heads:
            found_hash = by_seq.get(published.seq)
            if found_hash is None:
                problems.append(ChainProblem(published.seq, "published head has no record"))
            elif found_hash != published.hash:
                problems.append(ChainProblem(published.seq, "differs from its published head"))
        if len(heads) != len(checked):
            problems.append(
                ChainProblem(
                    None,
                    f"{len(heads)} head(s) published outside the store, {len(checked)} "
                    "record(s) inside it",
                )
            )
        elif heads and heads[-1].hash != head:
            problems.append(ChainProblem(None, "chain head differs from the published head"))
    return VerificationReport(
        records=len(checked),
        head=head,
        published_heads=None if heads is None else len(heads),
        problems=problems,
    )
