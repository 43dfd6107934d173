"""Checking a chain: every edit, deletion, insertion or reordering shows up as a problem.

Per record: the canonical JSON parses, its hash is the stored hash, and the PROV-O triples say
the same as the canonical JSON (so editing either side is caught). Across records: sequence
numbers run 0..n-1 without gaps or duplicates, and each record carries its predecessor's hash.
Against the head published outside the store: one head per record, each equal to the record's
hash, so truncating the chain or appending a forged record is caught even though the forger
can recompute every hash inside the store.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from pht_contract.hashing import sha256_hex
from pht_station_api.provenance import vocabulary as v
from pht_station_api.provenance.graphs import StoredRecord
from pht_station_api.provenance.heads import PublishedHead
from pht_station_api.provenance.records import (
    GENESIS_HASH,
    InvalidRecordError,
    ProvenanceRecord,
)


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


def _same_instant(stored: str | None, recorded: str) -> bool:
    """The store normalises ``xsd:dateTime`` lexical forms; compare instants, not strings."""
    if stored is None:
        return False
    try:
        return datetime.fromisoformat(stored) == datetime.fromisoformat(recorded)
    except ValueError:
        return stored == recorded


def _check_node(entry: StoredRecord) -> tuple[ProvenanceRecord | None, list[ChainProblem]]:
    problems: list[ChainProblem] = []
    seq_text = entry.one(v.PHT_SEQUENCE)
    seq = int(seq_text) if seq_text is not None and seq_text.lstrip("-").isdigit() else None
    canonical = entry.one(v.PHT_CANONICAL)
    stored_hash = entry.one(v.PHT_RECORD_HASH)
    if canonical is None or stored_hash is None or seq is None:
        problems.append(
            ChainProblem(seq, f"{entry.node} lacks (or repeats) its sequence, hash or record")
        )
        return None, problems
    try:
        record = ProvenanceRecord.from_canonical(json.loads(canonical))
    except (ValueError, InvalidRecordError) as exc:
        return None, [ChainProblem(seq, f"canonical record unreadable: {exc}")]
    if sha256_hex(canonical.encode()) != stored_hash or record.hash() != stored_hash:
        problems.append(ChainProblem(seq, "content does not match its hash (edited)"))
    if entry.node != v.record_iri(record.seq).value or record.seq != seq:
        problems.append(ChainProblem(seq, "sequence number does not match the record (moved)"))
    if not _same_instant(entry.one(v.PROV_STARTED), record.at):
        problems.append(ChainProblem(seq, f"PROV-O {v.PROV_STARTED.value} differs from the record"))
    expected = {
        v.PHT_KIND: record.kind.value,
        v.PHT_EVENT_ID: record.event_id,
        v.PHT_PREVIOUS_HASH: record.previous_hash,
        v.PROV_ASSOCIATED: v.agent_iri(record.actor).value,
    }
    if record.train_uid is not None:
        expected[v.PROV_USED] = v.train_iri(record.train_uid).value
    elif entry.count(v.PROV_USED):
        problems.append(ChainProblem(seq, "the PROV-O triples name a train the record does not"))
    for prop, value in expected.items():
        if entry.one(prop) != value:
            problems.append(ChainProblem(seq, f"PROV-O {prop.value} differs from the record"))
    return record, problems


def verify_records(
    entries: list[StoredRecord], heads: list[PublishedHead] | None
) -> VerificationReport:
    """Check stored record nodes (any order) and, when given, the externally published heads."""
    problems: list[ChainProblem] = []
    records: list[tuple[ProvenanceRecord, str]] = []
    for entry in entries:
        record, found = _check_node(entry)
        problems += found
        if record is not None:
            records.append((record, record.hash()))
    records.sort(key=lambda pair: pair[0].seq)
    previous = GENESIS_HASH
    for index, (record, record_hash) in enumerate(records):
        if record.seq != index:
            problems.append(
                ChainProblem(
                    record.seq,
                    f"expected record {index} here: a record is missing or duplicated",
                )
            )
        if record.previous_hash != previous:
            problems.append(
                ChainProblem(record.seq, "previous hash does not match (deleted or reordered)")
            )
        previous = record_hash
    head = records[-1][1] if records else None
    if heads is not None:
        by_seq = {r.seq: h for r, h in records}
        for published in heads:
            stored = by_seq.get(published.seq)
            if stored is None:
                problems.append(ChainProblem(published.seq, "published head has no record"))
            elif stored != published.hash:
                problems.append(ChainProblem(published.seq, "differs from its published head"))
        if len(heads) != len(records):
            problems.append(
                ChainProblem(
                    None,
                    f"{len(heads)} head(s) published outside the store, {len(records)} "
                    "record(s) inside it",
                )
            )
        elif heads and heads[-1].hash != head:
            problems.append(ChainProblem(None, "chain head differs from the published head"))
    return VerificationReport(
        records=len(records),
        head=head,
        published_heads=None if heads is None else len(heads),
        problems=problems,
    )
