"""The provenance chain: hash-linked PROV-O records in a store separate from the data.

Every admission, approval, registration, query, run, upload, release and policy change becomes
one record whose hash covers its canonical RDF (every triple written for it, the previous
record's hash among them). Records go into
their own pyoxigraph store (never the data store, which stays read-only to the gateway) and each
new head is also appended to a file on another path, so a rewrite of the store is detectable.

Operator events arrive through the internal API and may be retried: a record with an
``event_id`` that is already in the chain is not written twice (the first hash is returned).
"""

import json
import logging
import threading
import uuid
from pathlib import Path

from pyoxigraph import Literal, NamedNode, RdfFormat, Store

from pht_contract.times import utc_now
from pht_contract.wire import DetailValue, ProvenanceKind
from pht_station_api.provenance import vocabulary as v
from pht_station_api.provenance.graphs import (
    nodes_with,
    record_hash,
    record_quads,
    stored_quads,
    stored_records,
    term_text,
)
from pht_station_api.provenance.heads import (
    HeadFileError,
    PublishedHead,
    append_head,
    read_heads,
)
from pht_station_api.provenance.records import (
    GENESIS_HASH,
    InvalidRecordError,
    ProvenanceRecord,
    check_fields,
)
from pht_station_api.provenance.verification import (
    ChainProblem,
    VerificationReport,
    verify_records,
)

log = logging.getLogger(__name__)


def record_time() -> str:
    """A record's time: UTC with microseconds, so records of one second keep their order."""
    return utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ProvenanceChain:
    """Append-only, hash-linked records; thread-safe (FastAPI runs sync handlers in threads)."""

    def __init__(self, store: Store, head_file: Path | None = None) -> None:
        self._store = store
        self._head_file = head_file
        self._lock = threading.Lock()
        self._next_seq, self._head = self._load_tail()
        if head_file is not None:
            # Not fatal: refusing to start would stop the station, and verification reports
            # the mismatch (or the unreadable file) as tampering to ``pht audit verify``.
            try:
                heads = read_heads(head_file)
            except HeadFileError:
                log.error("the published provenance chain head file %s is corrupted", head_file)
                return
            published = heads[-1].hash if heads else None
            if published != self.head:
                log.error("provenance chain head differs from the head published in %s", head_file)

    @classmethod
    def open(cls, store_dir: Path | None, head_file: Path | None) -> "ProvenanceChain":
        """Open (or create) the chain; ``store_dir=None`` keeps it in memory (tests, demos).

        A new (empty) chain publishes an empty head file at once, so that from then on a missing
        head file can only mean it was removed, which verification reports as tampering.
        """
        if store_dir is not None:
            store_dir.mkdir(parents=True, exist_ok=True)
            chain = cls(Store(str(store_dir)), head_file)
        else:
            chain = cls(Store(), head_file)
        if head_file is not None and len(chain) == 0 and not head_file.exists():
            head_file.parent.mkdir(parents=True, exist_ok=True)
            head_file.touch()
        return chain

    @property
    def store(self) -> Store:
        return self._store

    @property
    def head(self) -> str | None:
        return None if self._next_seq == 0 else self._head

    def __len__(self) -> int:
        return self._next_seq

    def _load_tail(self) -> tuple[int, str]:
        query = (
            f"SELECT ?seq ?hash WHERE {{ GRAPH <{v.PROVENANCE_GRAPH.value}> {{ "
            f"?r <{v.PHT_SEQUENCE.value}> ?seq ; <{v.PHT_RECORD_HASH.value}> ?hash }} }} "
            "ORDER BY DESC(?seq) LIMIT 1"
        )
        for solution in self._store.query(query):  # type: ignore[union-attr]
            return int(solution["seq"].value) + 1, str(solution["hash"].value)
        return 0, GENESIS_HASH

    def _existing(self, event_id: str) -> str | None:
        for node in nodes_with(self._store, v.PHT_EVENT_ID, Literal(event_id)):
            for quad in self._store.quads_for_pattern(
                NamedNode(node), v.PHT_RECORD_HASH, None, v.PROVENANCE_GRAPH
            ):
                return term_text(quad.object)
        return None

    def record(
        self,
        kind: ProvenanceKind,
        *,
        train_uid: str | None,
        actor: str,
        details: dict[str, DetailValue],
        event_id: str | None = None,
        at: str | None = None,
    ) -> str:
        """Append one record and return its hash (the existing one for a repeated event id)."""
        checked = check_fields(actor, train_uid, event_id, at, details)
        with self._lock:
            if event_id is not None:
                existing = self._existing(event_id)
                if existing is not None:
                    return existing
            record = ProvenanceRecord(
                seq=self._next_seq,
                kind=ProvenanceKind(kind),
                train_uid=train_uid,
                actor=actor,
                at=at or record_time(),
                event_id=event_id or f"station:{uuid.uuid4()}",
                details=checked,
                previous_hash=self._head,
            )
            digest = record_hash(record)
            self._store.extend(record_quads(record, digest))
            if self._head_file is not None:
                append_head(self._head_file, PublishedHead(record.seq, digest), record.at)
            self._next_seq += 1
            self._head = digest
            return digest

    def records(self) -> list[ProvenanceRecord]:
        """Every readable record in sequence order (use :meth:`verify` to trust them)."""
        found: list[ProvenanceRecord] = []
        for entry in stored_records(self._store):
            canonical = entry.one(v.PHT_CANONICAL)
            if canonical is None:
                continue
            try:
                found.append(ProvenanceRecord.from_canonical(json.loads(canonical)))
            except (ValueError, InvalidRecordError):
                continue
        return sorted(found, key=lambda r: r.seq)

    def story(self, train_uid: str) -> list[ProvenanceRecord]:
        """A train's records, oldest first: what was decided about it, by whom, when."""
        nodes = set(nodes_with(self._store, v.PROV_USED, v.train_iri(train_uid)))
        found: list[ProvenanceRecord] = []
        for node in nodes:
            for quad in self._store.quads_for_pattern(
                NamedNode(node), v.PHT_CANONICAL, None, v.PROVENANCE_GRAPH
            ):
                try:
                    found.append(
                        ProvenanceRecord.from_canonical(json.loads(term_text(quad.object)))
                    )
                except (ValueError, InvalidRecordError):
                    continue
        return sorted(found, key=lambda r: r.seq)

    def verify(self) -> VerificationReport:
        """Check every record, every quad of the store and the published heads.

        A head file that is missing or cannot be read is itself reported as tampering: it is
        what makes a rewritten or truncated store detectable, so without it nothing is proven.
        """
        with self._lock:
            heads, problems = self._published_heads()
            report = verify_records(stored_records(self._store), heads, stored_quads(self._store))
        report.problems[:0] = problems
        return report

    def _published_heads(self) -> tuple[list[PublishedHead] | None, list[ChainProblem]]:
        path = self._head_file
        if path is None:
            return None, []
        if not path.is_file():
            message = (
                f"the published chain head file {path} is missing: a rewritten or truncated "
                "chain could not be told apart, so the chain cannot be trusted"
            )
            return None, [ChainProblem(None, message)]
        try:
            return read_heads(path), []
        except (HeadFileError, OSError, UnicodeDecodeError) as exc:
            return None, [ChainProblem(None, f"the published chain head file is corrupted: {exc}")]

    def export(self) -> bytes:
        """The provenance graph as N-Quads, for offline verification and archiving."""
        with self._lock:
            data = self._store.dump(format=RdfFormat.N_QUADS, from_graph=None)
        return data if isinstance(data, bytes) else b""
