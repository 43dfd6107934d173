"""The synthetic cohort: deterministic, stage-consistent, Lung1-shaped, queryable."""

import io
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest
import yaml

from pht_cli.main import main
from pht_contract import vocabulary as voc
from pht_station_api.cohorts import cohort_bytes, overall_stage
from pht_station_api.triplestores.loading import writer_lock

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "trains"
GRAPH = "urn:pht:graph:lung1"
T_OF = {code: int(name[1]) for name, code in voc.T_CODES.items() if name[1].isdigit()}
N_OF = {code: int(name[1]) for name, code in voc.N_CODES.items() if name[1].isdigit()}


def store_with(data: bytes) -> ox.Store:
    store = ox.Store()
    store.bulk_load(io.BytesIO(data), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(GRAPH))
    return store


def tumours(store: ox.Store) -> list[tuple[str, str, str]]:
    query = f"""SELECT ?t ?n ?stage WHERE {{ GRAPH <{GRAPH}> {{
        ?p a <{voc.PATIENT}> ; <{voc.HAS_NEOPLASM}> ?x .
        ?x <{voc.HAS_T_STAGE}> ?t ; <{voc.HAS_N_STAGE}> ?n ;
           <{voc.HAS_OVERALL_STAGE}> ?stage }} }}"""
    return [(s["t"].value, s["n"].value, s["stage"].value) for s in store.query(query)]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert cohort_bytes(30, seed=5) == cohort_bytes(30, seed=5)
    assert cohort_bytes(30, seed=5) != cohort_bytes(30, seed=6)


def test_every_patient_is_stage_consistent_and_typed() -> None:
    store = store_with(cohort_bytes(2000, seed=1))
    rows = tumours(store)
    assert len(rows) == 2000
    for t, n, stage in rows:
        assert overall_stage(T_OF[t], N_OF[n]) == stage


def test_marginals_follow_lung1() -> None:
    rows = tumours(store_with(cohort_bytes(4000, seed=2)))
    stages = Counter(stage for _, _, stage in rows)
    for stage, share in {"I": 0.27, "II": 0.09, "IIIa": 0.25, "IIIb": 0.39}.items():
        assert abs(stages[stage] / 4000 - share) < 0.03


def test_hospitals_have_different_case_mixes() -> None:
    mixes = []
    for hospital in (1, 2, 3):
        rows = tumours(store_with(cohort_bytes(3000, seed=4, hospital=hospital)))
        mixes.append(Counter(stage for _, _, stage in rows))
    assert mixes[0] != mixes[1] != mixes[2]
    spread = max(abs(mixes[0][s] - mixes[k][s]) for k in (1, 2) for s in ("I", "IIIb"))
    assert spread > 90  # > 3 % of 3000: not sampling noise


@pytest.mark.parametrize("train", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_train_queries_return_rows(train: str) -> None:
    store = store_with(cohort_bytes(100, seed=3))
    spec = yaml.safe_load((EXAMPLES / train).read_text())["spec"]
    for query in spec.get("queries", []):
        rows = list(
            store.query(
                query["sparql"],
                default_graph=[ox.NamedNode(GRAPH)],
                named_graphs=[ox.NamedNode(GRAPH)],
            )
        )
        assert len(rows) > 50, (train, query["name"])


def test_cli_generates_422_patients_by_default_and_loads(tmp_path: Path) -> None:
    out = tmp_path / "lung1.nq"
    assert main(["cohort", "generate", "--seed", "7", "--out", str(out)]) == 0
    assert out.read_text().count(f"<{voc.PATIENT}> <{GRAPH}> .") == 422
    store = tmp_path / "store"
    assert main(["load", str(out), "--store", str(store)]) == 0
    loaded = ox.Store.read_only(str(store))
    count = f"SELECT (COUNT(?p) AS ?n) WHERE {{ GRAPH <{GRAPH}> {{ ?p a <{voc.PATIENT}> }} }}"
    assert int(next(iter(loaded.query(count)))["n"].value) == 422


def test_cli_hospitals_write_one_file_each(tmp_path: Path) -> None:
    assert (
        main(["cohort", "generate", "--patients", "10", "--hospitals", "3", "--out", str(tmp_path)])
        == 0
    )
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["hospital-1.nq", "hospital-2.nq", "hospital-3.nq"]


def test_cli_load_refuses_while_the_api_holds_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "x.nt"
    data.write_text("<urn:a> <urn:b> <urn:c> .\n")
    store = tmp_path / "store"
    with writer_lock(store):
        assert main(["load", str(data), "--store", str(store)]) == 1
    assert "running station API" in capsys.readouterr().err
    assert main(["load", str(data), "--store", str(store)]) == 0
