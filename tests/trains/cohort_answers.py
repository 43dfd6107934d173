"""Realistic gateway answers for the example trains' tests: their own queries, run with
pyoxigraph over the station's synthetic Lung1-shaped cohort, serialised as SPARQL JSON.

This stands in for the station's gateway (it applies no policy); it is here so the trains are
tested against the graph shape and value encodings a real station serves.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml

from pht_station_api.cohorts import cohort_bytes

REPO = Path(__file__).resolve().parents[2]


def manifest_query(train_file: str, name: str | None = None) -> tuple[str, str]:
    """(query name, SPARQL) of an example Train manifest in ``examples/trains``."""
    spec = yaml.safe_load((REPO / "examples" / "trains" / train_file).read_text())["spec"]
    queries = spec["queries"]
    query = next(q for q in queries if name in (None, q["name"]))
    return query["name"], query["sparql"]


@cache
def cohort_store(patients: int, seed: int, hospital: int) -> ox.Store:
    store = ox.Store()
    store.load(cohort_bytes(patients, seed, hospital), format=ox.RdfFormat.N_TRIPLES)
    return store


def answer(sparql: str, patients: int = 300, seed: int = 0, hospital: int = 1) -> dict[str, Any]:
    result = cohort_store(patients, seed, hospital).query(sparql)
    document = json.loads(result.serialize(format=ox.QueryResultsFormat.JSON))
    assert isinstance(document, dict)
    return document


def sparql_json(variables: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """SPARQL JSON for hand-made rows: ints/floats typed, ``http…`` strings as IRIs."""
    xsd = "http://www.w3.org/2001/XMLSchema#"

    def term(value: Any) -> dict[str, str]:
        if isinstance(value, bool):
            return {"type": "literal", "value": str(value).lower(), "datatype": xsd + "boolean"}
        if isinstance(value, int):
            return {"type": "literal", "value": str(value), "datatype": xsd + "integer"}
        if isinstance(value, float):
            return {"type": "literal", "value": repr(value), "datatype": xsd + "double"}
        if str(value).startswith(("http://", "https://", "urn:")):
            return {"type": "uri", "value": value}
        return {"type": "literal", "value": str(value)}

    return {
        "head": {"vars": variables},
        "results": {
            "bindings": [
                {k: term(v) for k, v in row.items() if v is not None and k in variables}
                for row in rows
            ]
        },
    }
