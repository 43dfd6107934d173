"""Patient-set fingerprints: stable across restarts, keyed, compared by symmetric difference."""

import hashlib
import json
from pathlib import Path

from stationkit import registration

from pht_contract.wire import TrainRegistration
from pht_station_api.disclosure.decisions import GateDecision, Outcome, Rule
from pht_station_api.disclosure.ledgers import (
    DifferencingLedger,
    LedgerEntry,
    hold_for_differencing,
    too_close,
)
from pht_station_api.registry import PATIENT_KEY_FILE, TrainRegistry
from pht_station_api.results.records import ResultRecord
from pht_station_api.stores.jobs import QueryOutcome

IRIS = [f"https://hospital.example/patient/{i}".encode() for i in range(20)]


def _registration(registry_file: Path) -> TrainRegistration:
    return registration("token-" + registry_file.name)


def _patients(registry: TrainRegistry, uid: str) -> set[str]:
    train = registry.get(uid)
    assert train is not None
    return train.patient_set


def test_fingerprints_survive_a_restart_and_are_keyed(tmp_path: Path) -> None:
    path = tmp_path / "registrations.json"
    registry = TrainRegistry(path)
    reg = _registration(path)
    registry.register(reg)
    registry.record_query(reg.uid, 10, IRIS[:10])
    registry.record_query(reg.uid, 5, IRIS[5:15])  # fewer patients, but new ones: kept
    first = set(_patients(registry, reg.uid))
    assert len(first) == 15
    reopened = TrainRegistry(path)
    assert _patients(reopened, reg.uid) == first
    # the same key after a restart: the same patients give the same fingerprints
    reopened.register(_registration(tmp_path / "other"))
    other = next(t for t in reopened if t.uid != reg.uid)
    reopened.record_query(other.uid, 15, IRIS[:15])
    assert other.patient_set == first
    text = path.read_text()
    assert not any(iri.decode() in text for iri in IRIS)
    assert not any(hashlib.sha256(iri).hexdigest()[:32] in text for iri in IRIS)
    assert (tmp_path / PATIENT_KEY_FILE).stat().st_mode & 0o077 == 0


def test_another_station_key_gives_other_fingerprints(tmp_path: Path) -> None:
    one, two = TrainRegistry(tmp_path / "a" / "r.json"), TrainRegistry(tmp_path / "b" / "r.json")
    for registry in (one, two):
        registry.register(_registration(tmp_path / "x"))
        train = next(iter(registry))
        registry.record_query(train.uid, 3, IRIS[:3])
    assert next(iter(one)).patient_set.isdisjoint(next(iter(two)).patient_set)


def test_symmetric_difference_not_size() -> None:
    base = frozenset("abcdefghij")
    assert too_close(base - {"a"}, base, 5) == 1  # n-1
    assert too_close((base - {"a"}) | {"z"}, base, 5) == 2  # same size, one swapped
    assert too_close(base, base, 5) is None  # the same patients: nothing new
    assert too_close(base - set("abcde"), base, 5) is None  # five apart: threshold reached
    assert too_close(base - {"a"}, base, 0) is None  # threshold 0 switches the rule off
    assert too_close(frozenset(), base, 5) is None  # no audited patients: CohortUnverified


def test_the_ledger_compares_within_shared_scopes_only() -> None:
    ledger = DifferencingLedger()
    base = frozenset("abcdefghij")
    ledger.record(LedgerEntry("u1", "ns-a/one", frozenset({"namespace/ns-a"}), base))
    assert ledger.closest("u2", ["namespace/ns-b"], base - {"a"}, 5) is None
    found = ledger.closest("u2", ["namespace/ns-b", "namespace/ns-a"], base - {"a"}, 5)
    assert found is not None and (found.earlier.uid, found.difference) == ("u1", 1)
    assert ledger.closest("u1", ["namespace/ns-a"], base - {"a"}, 5) is None  # not itself
    assert DifferencingLedger(ledger.to_json()).closest("u2", ["namespace/ns-a"], base, 5) is None
    again = DifferencingLedger(json.loads(json.dumps(ledger.to_json())))
    assert again.closest("u2", ["namespace/ns-a"], base - {"b"}, 5) is not None
    assert again.forget("u1") and not again.forget("u1")
    assert again.closest("u2", ["namespace/ns-a"], base - {"b"}, 5) is None


def test_a_size_ledger_from_before_is_read_as_empty() -> None:
    ledger = DifferencingLedger({"maastro/oidc:alice": [100, 98]})
    assert ledger.to_json() == {"version": 2, "entries": []}


def test_a_record_from_before_scopes_loads_with_its_namespace() -> None:
    old = {
        "uid": "u1",
        "namespace": "research",
        "name": "km",
        "ledger_key": "maastro/alice",
        "retention_days": 7,
        "disclosure": {},
        "created_at": "2026-01-01T00:00:00Z",
    }
    assert ResultRecord.from_json(old).ledger_scopes == ["namespace/research"]


def test_the_hold_names_the_rule_never_the_patients() -> None:
    released = GateDecision(Outcome.RELEASED, None)
    overlap = DifferencingLedger()
    entry = LedgerEntry("u1", "ns/one", frozenset({"namespace/ns"}), frozenset("abc"))
    overlap.record(entry)
    near = overlap.closest("u2", ["namespace/ns"], frozenset("ab"), 5)
    held = hold_for_differencing(released, near)
    assert (held.outcome, held.rule) == (Outcome.HELD, Rule.DIFFERENCING)
    assert [f.describe() for f in held.findings] == ["Differencing (patient set near ns/one): Held"]
    blocked = GateDecision(Outcome.BLOCKED, Rule.MIN_COHORT)
    assert hold_for_differencing(blocked, near) is blocked
    assert hold_for_differencing(released, None) is released


def test_a_query_outcome_never_shows_its_patients() -> None:
    outcome = QueryOutcome("solutions", b"", 3, 3, patients=frozenset(IRIS[:3]))
    assert "hospital.example" not in repr(outcome)
