"""The query worker's own guarantees, in-process: dataset, row counts, patient counts."""

import io
import json
from pathlib import Path

import pyoxigraph as ox
import pytest

from pht_contract.vocabulary import PATIENT
from pht_station_api.triplestores.jobs import EmbeddedBackend, QueryJob, ResultFormat
from pht_station_api.triplestores.workers import _Engine, answer

OK = "urn:pht:graph:ok"
SECRET = "urn:pht:graph:secret"
DATA = f"""
<urn:p1> a <{PATIENT}> ; <urn:note> "line one\\nline\\ttwo" .
<urn:p2> a <{PATIENT}> ; <urn:note> "<urn:p3>" .
<urn:p3> <urn:note> "not a patient" .
<urn:x> <urn:note> "plain" .
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> _Engine:
    path = tmp_path_factory.mktemp("worker") / "store"
    store = ox.Store(str(path))
    store.bulk_load(
        io.BytesIO(DATA.encode()), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(OK)
    )
    store.add(
        ox.Quad(
            ox.NamedNode("urn:s"),
            ox.NamedNode("urn:note"),
            ox.Literal("secret"),
            ox.NamedNode(SECRET),
        )
    )
    store.flush()
    del store
    return _Engine(EmbeddedBackend(str(path)))


def job(query: str, fmt: ResultFormat = "json", cap: int = 100, form: str = "SELECT") -> QueryJob:
    return QueryJob(query, form, (OK,), (OK,), fmt, cap)


def test_the_jobs_dataset_wins_over_the_querys_own(engine: _Engine) -> None:
    """Even if a parser missed a FROM clause, the store only sees the explicit dataset."""
    for query in (
        f"SELECT ?o FROM <{SECRET}> WHERE {{ ?s <urn:note> ?o }}",
        f"SELECT ?o FROM NAMED <{SECRET}> WHERE {{ GRAPH ?g {{ ?s <urn:note> ?o }} }}",
        f"SELECT ?o WHERE {{ GRAPH <{SECRET}> {{ ?s <urn:note> ?o }} }}",
    ):
        outcome = answer(engine, job(query))
        assert outcome.error is None
        assert b"secret" not in outcome.body


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_rows_are_counted_exactly_whatever_the_literals_hold(
    engine: _Engine, fmt: ResultFormat
) -> None:
    outcome = answer(engine, job("SELECT ?s ?o WHERE { ?s <urn:note> ?o }", fmt))
    assert outcome.error is None and outcome.rows == 4
    if fmt == "json":
        assert len(json.loads(outcome.body)["results"]["bindings"]) == 4


def test_distinct_patients_are_typed_iris_not_look_alike_strings(engine: _Engine) -> None:
    outcome = answer(engine, job("SELECT ?s ?o WHERE { ?s <urn:note> ?o }"))
    assert outcome.distinct_patients == 2
    only_p3 = answer(engine, job("SELECT ?s WHERE { ?s <urn:note> 'not a patient' }"))
    assert only_p3.distinct_patients == 0


def test_row_cap_refuses_instead_of_truncating(engine: _Engine) -> None:
    outcome = answer(engine, job("SELECT ?s ?o WHERE { ?s <urn:note> ?o }", cap=3))
    assert outcome.error is not None and outcome.error[0] == "RowCapExceeded"
    assert outcome.body == b""
    at_cap = answer(engine, job("SELECT ?s ?o WHERE { ?s <urn:note> ?o }", cap=4))
    assert at_cap.error is None and at_cap.rows == 4


def test_construct_counts_triples_and_patients(engine: _Engine) -> None:
    query = f"CONSTRUCT {{ ?s a <{PATIENT}> }} WHERE {{ ?s a <{PATIENT}> }}"
    outcome = answer(engine, job(query, "ntriples", form="CONSTRUCT"))
    assert outcome.kind == "graph" and outcome.rows == 2 and outcome.distinct_patients == 2


def test_store_errors_are_reported_not_raised(engine: _Engine, tmp_path: Path) -> None:
    outcome = answer(engine, job("SELECT * WHERE { ?s ?p }"))
    assert outcome.error is not None and outcome.error[0] == "MalformedQuery"
