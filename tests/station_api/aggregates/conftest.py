"""A synthetic cohort in a real Oxigraph store, and the answers of the example trains' queries."""

from pathlib import Path

import pyoxigraph
import pytest
import yaml

from pht_station_api.cohorts import cohort_bytes

REPO = Path(__file__).resolve().parents[3]


def example_query(train: str, name: str) -> str:
    document = yaml.safe_load((REPO / "examples" / "trains" / f"{train}.yaml").read_text())
    return next(q["sparql"] for q in document["spec"]["queries"] if q["name"] == name)


def answer_of(store: pyoxigraph.Store, sparql: str) -> bytes:
    solutions = store.query(sparql, use_default_graph_as_union=True)
    assert isinstance(solutions, pyoxigraph.QuerySolutions)
    body = solutions.serialize(format=pyoxigraph.QueryResultsFormat.JSON)
    assert isinstance(body, bytes)
    return body


@pytest.fixture(scope="session")
def cohort_store() -> pyoxigraph.Store:
    store = pyoxigraph.Store()
    store.load(cohort_bytes(patients=300, seed=7), format=pyoxigraph.RdfFormat.N_QUADS)
    return store
