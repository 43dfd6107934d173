"""Between :class:`ProvenanceRecord` and PROV-O quads in the provenance store.

A record's graph is every triple written for it (its class, kind, sequence, time, agent and the
agent's label, the train and its uid, ``prov:wasInformedBy``, the previous hash, the canonical
JSON and the hash scheme) except ``pht:recordHash`` itself. Its hash is the SHA-256 of that
graph's *canonical RDF*: each triple in N-Triples as the store holds it (literals in the store's
normal form, e.g. ``xsd:dateTime``), one per line ending in `` .``, sorted, UTF-8. So any triple
added to, removed from or changed in a record changes what its hash must be.

Records written before canonical RDF hashing carry no ``pht:hashScheme``; their hash covers the
canonical JSON only (:func:`legacy_record_quads` rebuilds what such a record wrote).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyoxigraph import Literal, NamedNode, Quad, Store, Triple

from pht_contract.hashing import sha256_hex
from pht_station_api.provenance import vocabulary as v
from pht_station_api.provenance.records import ProvenanceRecord

#: The value of ``pht:hashScheme`` on every record hashed over its canonical RDF.
HASH_SCHEME = "sha256-sorted-ntriples-v2"


def term_text(term: object) -> str:
    """The lexical value of an IRI, blank node or literal (quoted triples do not occur here)."""
    value = getattr(term, "value", None)
    return value if isinstance(value, str) else str(term)


def _described(record: ProvenanceRecord) -> list[Quad]:
    """The PROV-O description and the canonical JSON, as every scheme writes them."""
    node = v.record_iri(record.seq)
    graph = v.PROVENANCE_GRAPH
    agent = v.agent_iri(record.actor)
    quads = [
        Quad(node, v.RDF_TYPE, v.PROV_ACTIVITY, graph),
        Quad(node, v.RDF_TYPE, v.kind_class(record.kind), graph),
        Quad(node, v.PHT_KIND, Literal(record.kind.value), graph),
        Quad(node, v.PHT_SEQUENCE, Literal(str(record.seq), datatype=v.XSD_INTEGER), graph),
        Quad(node, v.PHT_EVENT_ID, Literal(record.event_id), graph),
        Quad(node, v.PROV_STARTED, Literal(record.at, datatype=v.XSD_DATETIME), graph),
        Quad(node, v.PROV_ASSOCIATED, agent, graph),
        Quad(agent, v.RDF_TYPE, v.PROV_AGENT, graph),
        Quad(agent, v.RDFS_LABEL, Literal(record.actor), graph),
        Quad(node, v.PHT_PREVIOUS_HASH, Literal(record.previous_hash), graph),
        Quad(node, v.PHT_CANONICAL, Literal(record.canonical_bytes().decode()), graph),
    ]
    if record.seq > 0:
        quads.append(Quad(node, v.PROV_INFORMED_BY, v.record_iri(record.seq - 1), graph))
    if record.train_uid is not None:
        train = v.train_iri(record.train_uid)
        quads += [
            Quad(node, v.PROV_USED, train, graph),
            Quad(train, v.RDF_TYPE, v.PROV_ENTITY, graph),
            Quad(train, v.PHT_TRAIN_UID, Literal(record.train_uid), graph),
        ]
    return quads


def record_graph(record: ProvenanceRecord) -> list[Quad]:
    """Every quad the record's hash covers (all it writes but ``pht:recordHash``)."""
    scheme = Quad(
        v.record_iri(record.seq), v.PHT_HASH_SCHEME, Literal(HASH_SCHEME), v.PROVENANCE_GRAPH
    )
    return [*_described(record), scheme]


def _hash_quad(record: ProvenanceRecord, record_hash: str) -> Quad:
    node = v.record_iri(record.seq)
    return Quad(node, v.PHT_RECORD_HASH, Literal(record_hash), v.PROVENANCE_GRAPH)


def record_quads(record: ProvenanceRecord, record_hash: str) -> list[Quad]:
    return [*record_graph(record), _hash_quad(record, record_hash)]


def legacy_record_quads(record: ProvenanceRecord, record_hash: str) -> list[Quad]:
    """What a record hashed over its canonical JSON (no ``pht:hashScheme``) wrote."""
    return [*_described(record), _hash_quad(record, record_hash)]


def normal_form(quads: Iterable[Quad]) -> set[str]:
    """The quads in N-Quads as a store holds them (literals normalised the store's way)."""
    scratch = Store()
    scratch.extend(list(quads))
    return {f"{quad} ." for quad in scratch}


def canonical_rdf(record: ProvenanceRecord) -> bytes:
    """Sorted N-Triples of the record's graph, in the store's normal form."""
    scratch = Store()
    scratch.extend(record_graph(record))
    lines = sorted(f"{Triple(q.subject, q.predicate, q.object)} .\n" for q in scratch)
    return "".join(lines).encode("utf-8")


def record_hash(record: ProvenanceRecord) -> str:
    return sha256_hex(canonical_rdf(record))


def stored_quads(store: Store) -> set[str]:
    """Every quad of the store, in any graph (the default graph included), as N-Quads lines."""
    return {f"{quad} ." for quad in store.quads_for_pattern(None, None, None, None)}


@dataclass
class StoredRecord:
    """What the store holds about one record node: each property with all its values."""

    node: str
    values: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def one(self, prop: NamedNode) -> str | None:
        """The property's single value, or ``None`` when it is missing or ambiguous."""
        found = self.values.get(prop.value, [])
        return found[0] if len(found) == 1 else None

    def count(self, prop: NamedNode) -> int:
        return len(self.values.get(prop.value, []))


def stored_records(store: Store) -> list[StoredRecord]:
    """Every ``prov:Activity`` node of the provenance graph with its property values."""
    by_node: dict[str, StoredRecord] = {}
    activities = {
        term_text(q.subject)
        for q in store.quads_for_pattern(None, v.RDF_TYPE, v.PROV_ACTIVITY, v.PROVENANCE_GRAPH)
    }
    for quad in store.quads_for_pattern(None, None, None, v.PROVENANCE_GRAPH):
        subject = term_text(quad.subject)
        if subject not in activities:
            continue
        entry = by_node.setdefault(subject, StoredRecord(node=subject))
        entry.values[quad.predicate.value].append(term_text(quad.object))
    return list(by_node.values())


def nodes_with(store: Store, prop: NamedNode, value: NamedNode | Literal) -> Iterable[str]:
    for quad in store.quads_for_pattern(None, prop, value, v.PROVENANCE_GRAPH):
        yield term_text(quad.subject)
