"""The provenance chain: records, idempotence, stories and tamper detection."""

import json
from pathlib import Path

import pytest
from pyoxigraph import Literal, NamedNode, Quad, Store

from pht_contract.wire import ProvenanceKind
from pht_station_api.provenance import InvalidRecordError, ProvenanceChain
from pht_station_api.provenance import vocabulary as v
from pht_station_api.provenance.heads import read_heads


def _fill(chain: ProvenanceChain) -> list[str]:
    hashes = [
        chain.record(
            ProvenanceKind.ADMISSION,
            train_uid="uid-1",
            actor="operator",
            details={"reason": "Admitted"},
            event_id="admit-1",
        ),
        chain.record(ProvenanceKind.REGISTRATION, train_uid="uid-1", actor="operator", details={}),
        chain.record(
            ProvenanceKind.QUERY,
            train_uid="uid-1",
            actor="train",
            details={"queryHash": "a" * 64, "rows": 12, "outcome": "ok"},
        ),
        chain.record(ProvenanceKind.POLICY_CHANGE, train_uid=None, actor="steward-ann", details={}),
        chain.record(
            ProvenanceKind.RELEASE,
            train_uid="uid-1",
            actor="disclosure-gate",
            details={"decision": "Held", "rule": "ManualReleaseRequired"},
        ),
    ]
    return hashes


@pytest.fixture
def chain(tmp_path: Path) -> ProvenanceChain:
    return ProvenanceChain.open(tmp_path / "audit", tmp_path / "heads" / "chain-head.json")


def _replace(store: Store, seq: int, prop: NamedNode, new: Literal | NamedNode) -> None:
    node = v.record_iri(seq)
    for quad in list(store.quads_for_pattern(node, prop, None, v.PROVENANCE_GRAPH)):
        store.remove(quad)
    store.add(Quad(node, prop, new, v.PROVENANCE_GRAPH))


def test_records_link_and_verify(chain: ProvenanceChain, tmp_path: Path) -> None:
    hashes = _fill(chain)
    assert len(set(hashes)) == 5
    records = chain.records()
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    assert records[0].previous_hash == "0" * 64
    assert all(records[i].previous_hash == hashes[i - 1] for i in range(1, 5))
    report = chain.verify()
    assert report.ok, report.problems
    assert report.head == hashes[-1]
    heads = read_heads(tmp_path / "heads" / "chain-head.json")
    assert [h.hash for h in heads] == hashes


def test_event_id_is_idempotent(chain: ProvenanceChain) -> None:
    first = _fill(chain)[0]
    again = chain.record(
        ProvenanceKind.ADMISSION,
        train_uid="uid-1",
        actor="operator",
        details={"reason": "Admitted"},
        event_id="admit-1",
    )
    assert again == first
    assert len(chain) == 5
    assert chain.verify().ok


def test_story_tells_one_train(chain: ProvenanceChain) -> None:
    _fill(chain)
    chain.record(ProvenanceKind.ADMISSION, train_uid="uid-2", actor="operator", details={})
    story = chain.story("uid-1")
    assert [r.kind for r in story] == [
        ProvenanceKind.ADMISSION,
        ProvenanceKind.REGISTRATION,
        ProvenanceKind.QUERY,
        ProvenanceKind.RELEASE,
    ]
    assert story[-1].details["rule"] == "ManualReleaseRequired"
    assert chain.story("nobody") == []


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    store_dir, head = tmp_path / "audit", tmp_path / "head.jsonl"
    first = ProvenanceChain.open(store_dir, head)
    hashes = _fill(first)
    del first
    import gc

    gc.collect()
    second = ProvenanceChain.open(store_dir, head)
    assert second.head == hashes[-1]
    second.record(ProvenanceKind.RUN, train_uid="uid-1", actor="operator", details={})
    assert second.records()[-1].previous_hash == hashes[-1]
    assert second.verify().ok


def test_edit_of_canonical_record_is_detected(chain: ProvenanceChain) -> None:
    _fill(chain)
    record = chain.records()[2].canonical()
    record["details"]["rows"] = 9999
    _replace(chain.store, 2, v.PHT_CANONICAL, Literal(json.dumps(record)))
    problems = chain.verify().problems
    assert any(p.seq == 2 and "hash" in p.message for p in problems)


def test_edit_of_prov_triple_is_detected(chain: ProvenanceChain) -> None:
    _fill(chain)
    _replace(chain.store, 1, v.PROV_ASSOCIATED, v.agent_iri("someone-else"))
    problems = chain.verify().problems
    # the changed triple is both one no record wrote and one record 1 wrote that is gone
    assert {p.seq for p in problems} == {1} and len(problems) == 2


def test_rewritten_chain_is_caught_by_published_head(chain: ProvenanceChain) -> None:
    """A forger who recomputes every hash inside the store still differs from the heads."""
    _fill(chain)
    records = chain.records()
    chain.store.clear()
    forged = ProvenanceChain(chain.store)  # no head file: the forger cannot write it
    for record in records:
        details = dict(record.details)
        if record.kind == ProvenanceKind.RELEASE:
            details["decision"] = "Released"
        forged.record(
            record.kind,
            train_uid=record.train_uid,
            actor=record.actor,
            details=details,
            event_id=record.event_id,
            at=record.at,
        )
    assert forged.verify().ok  # internally consistent ...
    problems = chain.verify().problems  # ... but not with the published heads
    assert any(p.seq == 4 and "published head" in p.message for p in problems)


def test_deletion_is_detected(chain: ProvenanceChain) -> None:
    _fill(chain)
    node = v.record_iri(2)
    for quad in list(chain.store.quads_for_pattern(node, None, None, v.PROVENANCE_GRAPH)):
        chain.store.remove(quad)
    messages = [str(p) for p in chain.verify().problems]
    assert any("record 3" in m and "missing" in m for m in messages)
    assert any("published head has no record" in m for m in messages)


def test_tail_deletion_is_detected_only_by_the_heads(chain: ProvenanceChain) -> None:
    _fill(chain)
    node = v.record_iri(4)
    for quad in list(chain.store.quads_for_pattern(node, None, None, v.PROVENANCE_GRAPH)):
        chain.store.remove(quad)
    # the agent only the deleted record named is left behind: that alone gives it away
    assert not ProvenanceChain(chain.store).verify().ok
    agent = v.agent_iri("disclosure-gate")
    for quad in list(chain.store.quads_for_pattern(agent, None, None, v.PROVENANCE_GRAPH)):
        chain.store.remove(quad)
    # a careful forger leaves a consistent shorter chain: only the heads catch that
    assert ProvenanceChain(chain.store).verify().ok
    assert not chain.verify().ok


def test_reordering_is_detected(chain: ProvenanceChain) -> None:
    _fill(chain)
    store = chain.store
    one, two = v.record_iri(1), v.record_iri(2)
    quads_one = list(store.quads_for_pattern(one, None, None, v.PROVENANCE_GRAPH))
    quads_two = list(store.quads_for_pattern(two, None, None, v.PROVENANCE_GRAPH))
    for quad in quads_one + quads_two:
        store.remove(quad)
    for quad in quads_one:
        store.add(Quad(two, quad.predicate, quad.object, quad.graph_name))
    for quad in quads_two:
        store.add(Quad(one, quad.predicate, quad.object, quad.graph_name))
    problems = chain.verify().problems
    assert {p.seq for p in problems} >= {1, 2}


def test_details_must_be_bounded_scalars(chain: ProvenanceChain) -> None:
    with pytest.raises(InvalidRecordError):
        chain.record(
            ProvenanceKind.UPLOAD,
            train_uid="u",
            actor="train",
            details={"rows": [1, 2, 3]},  # type: ignore[dict-item]
        )
    with pytest.raises(InvalidRecordError):
        chain.record(ProvenanceKind.UPLOAD, train_uid="u", actor="t", details={"x": "y" * 5000})
    with pytest.raises(InvalidRecordError):
        chain.record(ProvenanceKind.UPLOAD, train_uid="u", actor="t\ud800", details={})
    with pytest.raises(InvalidRecordError):
        chain.record(ProvenanceKind.UPLOAD, train_uid="u", actor="t", details={"x": "\udfff"})
    assert len(chain) == 0


def test_records_are_prov_o(chain: ProvenanceChain) -> None:
    _fill(chain)
    query = """
        PREFIX prov: <http://www.w3.org/ns/prov#>
        SELECT (COUNT(?a) AS ?n) WHERE { GRAPH ?g {
          ?a a prov:Activity ; prov:wasAssociatedWith ?agent ; prov:startedAtTime ?t .
          ?agent a prov:Agent } }
    """
    (solution,) = list(chain.store.query(query))  # type: ignore[arg-type]
    assert int(solution["n"].value) == 5
    exported = chain.export()
    assert b"<http://www.w3.org/ns/prov#wasInformedBy>" in exported


def _legacy_chain(tmp_path: Path) -> tuple[Store, Path]:
    """A chain as earlier versions wrote it: hashes over the canonical JSON, no hash scheme."""
    from pht_station_api.provenance.graphs import legacy_record_quads
    from pht_station_api.provenance.heads import PublishedHead, append_head
    from pht_station_api.provenance.records import GENESIS_HASH, ProvenanceRecord

    store, head = Store(), tmp_path / "legacy-head.json"
    previous = GENESIS_HASH
    for seq, actor in enumerate(["operator", "train"]):
        record = ProvenanceRecord(
            seq=seq,
            kind=ProvenanceKind.QUERY,
            train_uid="uid-1",
            actor=actor,
            at="2026-11-01T10:00:00Z",
            event_id=f"station:legacy-{seq}",
            details={"rows": seq},
            previous_hash=previous,
        )
        previous = record.legacy_hash()
        store.extend(legacy_record_quads(record, previous))
        append_head(head, PublishedHead(seq, previous), record.at)
    return store, head


def test_a_chain_from_an_earlier_version_still_verifies_and_grows(tmp_path: Path) -> None:
    store, head = _legacy_chain(tmp_path)
    chain = ProvenanceChain(store, head)
    assert chain.verify().ok
    chain.record(ProvenanceKind.RUN, train_uid="uid-1", actor="operator", details={})
    report = chain.verify()
    assert report.ok and report.records == 3


def test_an_older_record_cannot_be_edited_or_given_the_new_scheme(tmp_path: Path) -> None:
    store, head = _legacy_chain(tmp_path)
    _replace(store, 1, v.PHT_KIND, Literal("approval"))
    assert {p.seq for p in ProvenanceChain(store, head).verify().problems} == {1}
    store, head = _legacy_chain(tmp_path / "again")
    store.add(
        Quad(
            v.record_iri(0),
            v.PHT_HASH_SCHEME,
            Literal("sha256-sorted-ntriples-v2"),
            v.PROVENANCE_GRAPH,
        )
    )
    problems = ProvenanceChain(store, head).verify().problems
    assert any(p.seq == 0 and "hash" in p.message for p in problems)
