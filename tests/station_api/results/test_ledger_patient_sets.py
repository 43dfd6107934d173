"""Patient-set fingerprints: stable across restarts, keyed, compared by symmetric difference."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from stationkit import registration
from test_result_archive import DONE, result, train

from pht_contract.trains import ReleaseState
from pht_contract.wire import ReleaseDecision, TrainRegistration
from pht_station_api.disclosure.decisions import GateDecision, Outcome, Rule
from pht_station_api.disclosure.ledgers import (
    DifferencingLedger,
    LedgerEntry,
    hold_for_differencing,
    just_below,
    too_close,
)
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.registry import PATIENT_KEY_FILE, TrainRegistry
from pht_station_api.results import ResultArchive
from pht_station_api.results.records import ResultRecord
from pht_station_api.triplestores.jobs import QueryOutcome


@pytest.fixture
def chain() -> ProvenanceChain:
    return ProvenanceChain.open(None, None)


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


def test_patient_sets_are_compared_station_wide_sizes_within_scopes() -> None:
    ledger = DifferencingLedger()
    base = frozenset("abcdefghij")
    ledger.record(LedgerEntry("u1", "ns-a/one", frozenset({"namespace/ns-a"}), base))
    found = ledger.closest("u2", ["namespace/ns-b"], base - {"a"}, 5)
    assert found is not None and (found.earlier.uid, found.difference) == ("u1", 1)
    assert found.compared == "patient set"
    assert ledger.closest("u1", ["namespace/ns-a"], base - {"a"}, 5) is None  # not itself
    sizes = LedgerEntry("u3", "ns-c/sizes", frozenset({"namespace/ns-c"}), frozenset(), {40})
    ledger.record(sizes)
    assert ledger.closest("u4", ["namespace/ns-b"], frozenset(), 5, [41]) is None
    near = ledger.closest("u4", ["namespace/ns-c"], frozenset(), 5, [41])
    assert near is not None and (near.earlier.uid, near.compared) == ("u3", "cohort size")
    again = DifferencingLedger(
        LedgerEntry.from_json(json.loads(json.dumps(e.to_json()))) for e in ledger.entries()
    )
    assert again.closest("u2", ["namespace/ns-a"], base - {"b"}, 5) is not None
    assert again.forget("u1") and not again.forget("u1")
    assert again.closest("u2", ["namespace/ns-a"], base - {"b"}, 5) is None


def test_entries_persist_one_file_each_and_a_size_ledger_is_read_by_requester(
    tmp_path: Path, chain: ProvenanceChain
) -> None:
    root = tmp_path / "results"
    root.mkdir()
    (root / "ledger.json").write_text(json.dumps({"maastro/alice": [100, 98]}))
    store = ResultArchive(root)
    base = range(100)
    for uid, patients in (("one", base), ("two", range(1, 100))):
        context = train(uid, name=uid, patients=patients)
        store.upload(context, result([50, 50]), chain)
        store.complete(context, DONE, 100, chain)
    assert sorted(p.name for p in (root / "_ledger").iterdir()) == ["one.json", "two.json"]
    reopened = ResultArchive(root)
    three = train("three", name="three", patients=range(2, 100))
    reopened.upload(three, result([49, 49]), chain)
    record = reopened.complete(three, DONE, 98, chain).record
    assert (record.release, record.rule) == (ReleaseState.HELD, "Differencing")
    reopened.decide("three", ReleaseDecision(decision="Block", reason="near two"), "sam", chain)
    assert not (root / "_ledger" / "three.json").exists()


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


def test_the_registry_forgets_the_set_once_the_result_is_decided(tmp_path: Path) -> None:
    path = tmp_path / "registrations.json"
    registry = TrainRegistry(path)
    reg = _registration(path)
    registry.register(reg)
    registry.record_query(reg.uid, 3, IRIS[:3])
    registry.forget_patients(reg.uid)
    assert _patients(TrainRegistry(path), reg.uid) == set()


def test_without_patient_sets_the_ledger_falls_back_to_cohort_sizes(
    tmp_path: Path, chain: ProvenanceChain
) -> None:
    """Aggregate-only queries bind no patient IRIs: the sizes still warn the steward."""
    root = tmp_path / "results"
    root.mkdir()
    (root / "ledger.json").write_text(json.dumps({"maastro/oidc:alice": [100]}))
    store = ResultArchive(root)
    legacy = replace(train("old", name="old", patients=range(0)), requested_by="oidc:alice")
    store.upload(legacy, result([50, 49]), chain)
    record = store.complete(legacy, DONE, None, chain).record
    assert (record.release, record.rule) == (ReleaseState.HELD, "CohortUnverified")
    assert record.findings[-1] == (
        "Differencing (cohort size near a result released before patient sets were kept): Held"
    )
    # A later result of the namespace with a known patient set is compared by size with it.
    later = train("later", name="later", patients=range(98))
    store.upload(later, result([49, 49]), chain)
    record = store.complete(later, DONE, 98, chain).record
    assert (record.release, record.rule) == (ReleaseState.HELD, "Differencing")
    assert record.findings[-1] == "Differencing (cohort size near research/old): Held"


def test_declared_sizes_are_compared_over_nested_patient_sets() -> None:
    """The algorithm may drop patients in code: over the same (or nearly nested) patient sets,
    declared cohorts in (0, threshold) of each other are held; identical ones are not."""
    base = frozenset("abcdefghij")
    ledger = DifferencingLedger()
    ledger.record(LedgerEntry("u1", "ns/one", frozenset({"namespace/ns"}), base, frozenset({10})))
    near = ledger.closest("u2", ["namespace/other"], base, 5, [9, 10])
    assert near is not None and (near.compared, near.difference) == ("cohort size", 1)
    assert ledger.closest("u2", ["namespace/other"], base, 5, [10]) is None  # a rerun
    assert ledger.closest("u2", ["namespace/other"], base, 5, [5, 10]) is None  # five apart
    wider = base | frozenset("klmnopq")  # a superset by seven: nested, sizes compared
    near = ledger.closest("u2", ["namespace/other"], wider, 5, [11, 17])
    assert near is not None and near.compared == "cohort size"
    apart = frozenset("klmnopqrst")  # disjoint: sizes of unrelated studies are not compared
    assert ledger.closest("u2", ["namespace/other"], apart, 5, [9, 10]) is None
    assert ledger.closest("u2", ["namespace/other"], base, 0, [9, 10]) is None  # rule off


def test_a_declared_cohort_just_below_the_audited_one_is_held() -> None:
    assert just_below([59, 60], 60, 5)
    assert not just_below([55, 60], 60, 5)  # five below: the threshold is reached
    assert not just_below([60], 60, 5)
    assert not just_below([59], None, 5)  # no audited cohort: CohortUnverified holds it
    assert not just_below([59, 60], 60, 0)
    held = hold_for_differencing(GateDecision(Outcome.RELEASED, None), None, below_audited=True)
    assert (held.outcome, held.rule) == (Outcome.HELD, Rule.DIFFERENCING)
    assert [f.describe() for f in held.findings] == [
        "Differencing (cohort size just below the audited cohort): Held"
    ]
