"""IRIs of the provenance graph: PROV-O terms plus a few of our own for the hash chain.

A record is a ``prov:Activity`` associated with its actor (``prov:Agent``), using the train it
concerns (``prov:Entity``) and informed by the record before it. The chain's own bookkeeping
(sequence number, hashes, the canonical record the hash covers) lives in the ``pht`` namespace.
"""

from typing import Final
from urllib.parse import quote

from pyoxigraph import NamedNode

from pht_contract.wire import ProvenanceKind

PROV: Final = "http://www.w3.org/ns/prov#"
PHT: Final = "https://w3id.org/pht/provenance#"
RDF_TYPE: Final = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
RDFS_LABEL: Final = NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
XSD_INTEGER: Final = NamedNode("http://www.w3.org/2001/XMLSchema#integer")
XSD_DATETIME: Final = NamedNode("http://www.w3.org/2001/XMLSchema#dateTime")

PROV_ACTIVITY: Final = NamedNode(PROV + "Activity")
PROV_AGENT: Final = NamedNode(PROV + "Agent")
PROV_ENTITY: Final = NamedNode(PROV + "Entity")
PROV_STARTED: Final = NamedNode(PROV + "startedAtTime")
PROV_ASSOCIATED: Final = NamedNode(PROV + "wasAssociatedWith")
PROV_USED: Final = NamedNode(PROV + "used")
PROV_INFORMED_BY: Final = NamedNode(PROV + "wasInformedBy")

PHT_SEQUENCE: Final = NamedNode(PHT + "sequence")
PHT_KIND: Final = NamedNode(PHT + "kind")
PHT_EVENT_ID: Final = NamedNode(PHT + "eventId")
PHT_RECORD_HASH: Final = NamedNode(PHT + "recordHash")
PHT_PREVIOUS_HASH: Final = NamedNode(PHT + "previousHash")
PHT_CANONICAL: Final = NamedNode(PHT + "canonicalRecord")
PHT_TRAIN_UID: Final = NamedNode(PHT + "trainUid")
#: Names how ``pht:recordHash`` was computed; records without it predate canonical RDF hashing.
PHT_HASH_SCHEME: Final = NamedNode(PHT + "hashScheme")

#: Everything lives in one named graph of the (separate) provenance store.
PROVENANCE_GRAPH: Final = NamedNode("urn:pht:provenance")

_KIND_CLASSES: Final = {
    ProvenanceKind.ADMISSION: "Admission",
    ProvenanceKind.APPROVAL: "Approval",
    ProvenanceKind.REGISTRATION: "Registration",
    ProvenanceKind.QUERY: "Query",
    ProvenanceKind.RUN: "Run",
    ProvenanceKind.UPLOAD: "Upload",
    ProvenanceKind.RELEASE: "Release",
    ProvenanceKind.POLICY_CHANGE: "PolicyChange",
    ProvenanceKind.DEREGISTRATION: "Deregistration",
}


def kind_class(kind: ProvenanceKind) -> NamedNode:
    return NamedNode(PHT + _KIND_CLASSES[kind])


def record_iri(seq: int) -> NamedNode:
    return NamedNode(f"urn:pht:provenance:record:{seq}")


def agent_iri(actor: str) -> NamedNode:
    return NamedNode("urn:pht:agent:" + quote(actor, safe=""))


def train_iri(uid: str) -> NamedNode:
    return NamedNode("urn:pht:train:" + quote(uid, safe=""))
