"""The disclosure gate: pure functions deciding what may leave the station, and why."""

from pht_station_api.disclosure.decisions import Finding, GateDecision, Outcome, Rule
from pht_station_api.disclosure.exports import table_csv
from pht_station_api.disclosure.gate import evaluate, evaluate_bytes
from pht_station_api.disclosure.ledgers import DifferencingLedger

__all__ = [
    "DifferencingLedger",
    "Finding",
    "GateDecision",
    "Outcome",
    "Rule",
    "evaluate",
    "evaluate_bytes",
    "table_csv",
]
