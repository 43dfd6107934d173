"""Someone with write access to the provenance store hides what happened.

The attacks: change a triple that ``pht audit verify`` used not to look at (the record's class,
``prov:wasInformedBy``, the agent's label, the train's uid), add a triple anywhere, remove one,
delete the published head file, or corrupt it. Each must make ``pht audit verify`` exit 1 and
say TAMPERED; an untouched chain must still verify (exit 0).
"""

import gc
from collections.abc import Callable
from pathlib import Path

import pytest
from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad, Store

from pht_cli.main import main
from pht_contract.wire import ProvenanceKind
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.provenance import vocabulary as v

GRAPH = v.PROVENANCE_GRAPH
R1 = v.record_iri(1)
R2 = v.record_iri(2)
GATE = v.agent_iri("disclosure-gate")
TRAIN = v.train_iri("uid-7")


@pytest.fixture
def chain_files(tmp_path: Path) -> tuple[Path, Path]:
    store, head = tmp_path / "audit", tmp_path / "elsewhere" / "chain-head.json"
    chain = ProvenanceChain.open(store, head)
    chain.record(ProvenanceKind.REGISTRATION, train_uid="uid-7", actor="operator", details={})
    chain.record(ProvenanceKind.QUERY, train_uid="uid-7", actor="train", details={"rows": 60})
    chain.record(
        ProvenanceKind.RELEASE,
        train_uid="uid-7",
        actor="disclosure-gate",
        details={"decision": "Held", "rule": "ManualReleaseRequired"},
    )
    del chain
    gc.collect()
    return store, head


def _swap(store: Store, subject: NamedNode, prop: NamedNode, old: object, new: object) -> None:
    (quad,) = [q for q in store.quads_for_pattern(subject, prop, None, GRAPH) if q.object == old]
    store.remove(quad)
    store.add(Quad(subject, prop, new, GRAPH))  # type: ignore[arg-type]


EDITS: dict[str, Callable[[Store], None]] = {
    "record class": lambda s: _swap(
        s, R2, v.RDF_TYPE, v.kind_class(ProvenanceKind.RELEASE), NamedNode(v.PHT + "Query")
    ),
    "wasInformedBy": lambda s: _swap(s, R2, v.PROV_INFORMED_BY, R1, v.record_iri(0)),
    "agent label": lambda s: _swap(
        s, GATE, v.RDFS_LABEL, Literal("disclosure-gate"), Literal("steward-ann")
    ),
    "train uid": lambda s: _swap(s, TRAIN, v.PHT_TRAIN_UID, Literal("uid-7"), Literal("uid-9")),
    "extra triple on a record": lambda s: s.add(
        Quad(R2, NamedNode(v.PHT + "note"), Literal("released after all"), GRAPH)
    ),
    "extra triple on an agent": lambda s: s.add(
        Quad(GATE, v.RDF_TYPE, NamedNode(v.PROV + "Person"), GRAPH)
    ),
    "extra triple in the default graph": lambda s: s.add(
        Quad(R2, v.PHT_KIND, Literal("Approval"), DefaultGraph())
    ),
    "removed triple": lambda s: s.remove(
        next(iter(s.quads_for_pattern(R1, v.PROV_STARTED, None, GRAPH)))
    ),
    "removed hash scheme (downgrade)": lambda s: s.remove(
        next(iter(s.quads_for_pattern(R2, v.PHT_HASH_SCHEME, None, GRAPH)))
    ),
}


def _verify(store: Path, head: Path) -> int:
    return main(["audit", "verify", "--store", str(store), "--head-file", str(head)])


def test_an_untouched_chain_verifies(
    chain_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(*chain_files) == 0
    assert "chain intact: 3 record(s)" in capsys.readouterr().out


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_any_triple_edit_is_tampering(
    chain_files: tuple[Path, Path], edit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir, head = chain_files
    store = Store(str(store_dir))
    EDITS[edit](store)
    store.flush()
    del store
    gc.collect()
    assert _verify(store_dir, head) == 1
    assert "TAMPERED" in capsys.readouterr().out


def test_a_missing_head_file_is_tampering(
    chain_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir, head = chain_files
    head.unlink()
    assert _verify(store_dir, head) == 1
    out = capsys.readouterr().out
    assert "TAMPERED chain" in out and "missing" in out


@pytest.mark.parametrize(
    "damage",
    [
        b"not json\n",
        b'{"seq": 0, "hash": "xyz"}\n',
        b"\xff\xfe\x00garbage",
        b'{"seq": 2, "hash": "' + b"a" * 64 + b'"}\n',
    ],
)
def test_a_corrupted_head_file_is_tampering(
    chain_files: tuple[Path, Path], damage: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir, head = chain_files
    head.write_bytes(damage)
    assert _verify(store_dir, head) == 1
    out = capsys.readouterr().out
    assert "TAMPERED chain" in out and "corrupted" in out
    assert "Traceback" not in out
