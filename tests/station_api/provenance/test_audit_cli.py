"""``pht audit verify`` / ``pht audit show`` against a real on-disk chain."""

import gc
import json
from pathlib import Path

import pytest
from pyoxigraph import Literal, Quad, RdfFormat, Store

from pht_cli.main import main
from pht_contract.wire import ProvenanceKind
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.provenance import vocabulary as v


@pytest.fixture
def chain_files(tmp_path: Path) -> tuple[Path, Path]:
    store, head = tmp_path / "audit", tmp_path / "elsewhere" / "chain-head.json"
    chain = ProvenanceChain.open(store, head)
    chain.record(
        ProvenanceKind.REGISTRATION,
        train_uid="uid-7",
        actor="operator",
        details={"namespace": "pht-requests", "name": "km"},
    )
    chain.record(ProvenanceKind.QUERY, train_uid="uid-7", actor="train", details={"rows": 60})
    chain.record(ProvenanceKind.ADMISSION, train_uid="uid-8", actor="operator", details={})
    chain.record(
        ProvenanceKind.RELEASE,
        train_uid="uid-7",
        actor="disclosure-gate",
        details={"decision": "Held", "rule": "ManualReleaseRequired"},
    )
    (tmp_path / "export.nq").write_bytes(chain.export())
    del chain
    gc.collect()  # closes the store: a second process may then open it
    return store, head


def _args(store: Path, head: Path) -> list[str]:
    return ["--store", str(store), "--head-file", str(head)]


def test_verify_intact_chain(
    chain_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", *_args(*chain_files)]) == 0
    assert "chain intact: 4 record(s)" in capsys.readouterr().out


def test_verify_names_the_tampered_record(
    chain_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir, head = chain_files
    store = Store(str(store_dir))
    node = v.record_iri(3)
    (quad,) = list(store.quads_for_pattern(node, v.PHT_CANONICAL, None, v.PROVENANCE_GRAPH))
    record = json.loads(quad.object.value)
    record["details"]["decision"] = "Released"
    store.remove(quad)
    store.add(Quad(node, v.PHT_CANONICAL, Literal(json.dumps(record)), v.PROVENANCE_GRAPH))
    store.flush()
    del store
    gc.collect()
    assert main(["audit", "verify", *_args(store_dir, head)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED record 3" in out and "hash" in out


def test_verify_export_and_missing_head(
    chain_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.nq"
    _, head = chain_files
    assert main(["audit", "verify", "--export", str(export), "--head-file", str(head)]) == 0
    # One published head too many: the store lost its last record.
    with head.open("a") as handle:
        handle.write('{"seq": 4, "hash": "' + "f" * 64 + '", "at": "x"}\n')
    assert main(["audit", "verify", "--export", str(export), "--head-file", str(head)]) == 1
    assert "published head has no record" in capsys.readouterr().out
    missing = tmp_path / "nowhere.json"
    # Without the published head a rewritten chain cannot be told apart: that is tampering.
    assert main(["audit", "verify", "--export", str(export), "--head-file", str(missing)]) == 1
    assert "TAMPERED chain: the published chain head file" in capsys.readouterr().out
    assert main(["audit", "verify", "--store", str(tmp_path / "none")]) == 2


def test_show_tells_one_trains_story(
    chain_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "show", "pht-requests/km", *_args(*chain_files)]) == 0
    out = capsys.readouterr().out
    assert "train uid uid-7: 3 record(s)" in out
    assert "ManualReleaseRequired" in out and "admission" not in out
    assert main(["audit", "show", "uid-8", "-o", "json", *_args(*chain_files)]) == 0
    (story,) = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in story["records"]] == ["admission"]
    assert main(["audit", "show", "other", *_args(*chain_files)]) == 1


def test_export_round_trip_is_nquads(chain_files: tuple[Path, Path], tmp_path: Path) -> None:
    store = Store()
    store.load(path=str(tmp_path / "export.nq"), format=RdfFormat.N_QUADS)
    assert len(list(store.quads_for_pattern(None, v.PHT_RECORD_HASH, None, None))) == 4


def test_a_new_station_publishes_an_empty_head_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, head = tmp_path / "audit", tmp_path / "elsewhere" / "chain-head.json"
    ProvenanceChain.open(store, head)
    gc.collect()
    assert head.is_file() and head.read_text() == ""
    assert main(["audit", "verify", *_args(store, head)]) == 0
    assert "chain intact: 0 record(s)" in capsys.readouterr().out
    head.unlink()
    assert main(["audit", "verify", *_args(store, head)]) == 1
