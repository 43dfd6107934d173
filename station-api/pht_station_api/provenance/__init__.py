"""Provenance: a hash-linked PROV-O chain of everything the station decided."""

from pht_station_api.provenance.chain import ProvenanceChain
from pht_station_api.provenance.records import InvalidRecordError, ProvenanceRecord
from pht_station_api.provenance.verification import ChainProblem, VerificationReport

__all__ = [
    "ChainProblem",
    "InvalidRecordError",
    "ProvenanceChain",
    "ProvenanceRecord",
    "VerificationReport",
]
