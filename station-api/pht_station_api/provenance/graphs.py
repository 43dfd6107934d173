"""Between :class:`ProvenanceRecord` and PROV-O quads in the provenance store.

Writing produces the PROV-O description *and* the canonical JSON the hash covers; reading gives
back, per record node, every value each property has, so verification can notice a property
that was removed, duplicated or changed independently of the canonical JSON.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyoxigraph import Literal, NamedNode, Quad, Store

from pht_station_api.provenance import vocabulary as v
from pht_station_api.provenance.records import ProvenanceRecord


def term_text(term: object) -> str:
    """The lexical value of an IRI, blank node or literal (quoted triples do not occur here)."""
    value = getattr(term, "value", None)
    return value if isinstance(value, str) else str(term)


def record_quads(record: ProvenanceRecord, record_hash: str) -> list[Quad]:
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
        Quad(node, v.PHT_RECORD_HASH, Literal(record_hash), graph),
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
