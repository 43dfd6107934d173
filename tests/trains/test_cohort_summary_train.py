"""The cohort-summary train: its counts equal the store's own GROUP BY counts."""

from typing import Any

from cohort_answers import answer, cohort_store, manifest_query, sparql_json
from cohort_summary.summaries import summarise
from cohort_summary.train import describe

PREFIXES = """PREFIX roo: <http://www.cancerdata.org/roo/>
PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#>
"""
#: The same counts computed by the store itself (an independent calculation).
BY_STAGE = (
    PREFIXES
    + """SELECT ?label (COUNT(DISTINCT ?p) AS ?n) WHERE {
  ?p a ncit:C16960 ; roo:P100029/roo:P100219 ?label } GROUP BY ?label"""
)
BY_HISTOLOGY_KNOWN = (
    PREFIXES
    + """SELECT ?label (COUNT(DISTINCT ?p) AS ?n) WHERE {
  ?p a ncit:C16960 ; roo:P100029/roo:P100021 ?label } GROUP BY ?label"""
)
BY_SEX = (
    PREFIXES
    + """SELECT ?label (COUNT(DISTINCT ?p) AS ?n) WHERE {
  ?p a ncit:C16960 ; roo:P100018/roo:P100042 ?code .
  BIND(IF(?code = ncit:C20197, "male", "female") AS ?label) } GROUP BY ?label"""
)


def store_counts(sparql: str, patients: int) -> dict[str, int]:
    result = cohort_store(patients, 0, 1).query(sparql)
    return {row["label"].value: int(row["n"].value) for row in result}


def tables_of(manifest: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {t["name"]: {row[0]: row[1] for row in t["rows"]} for t in manifest["tables"]}


def test_counts_match_the_stores_group_by(station_run: Any) -> None:
    query = manifest_query("cohort-summary.yaml")
    manifest = station_run(describe, query, answer(query[1], patients=300))
    tables = tables_of(manifest)
    assert all(t["cohortSize"] == 300 for t in manifest["tables"])
    assert tables["patients_by_stage"] == store_counts(BY_STAGE, 300)
    assert tables["patients_by_sex"] == store_counts(BY_SEX, 300)
    histology = store_counts(BY_HISTOLOGY_KNOWN, 300)
    histology["missing"] = 300 - sum(histology.values())
    assert tables["patients_by_histology"] == histology
    for table in manifest["tables"]:
        assert [c["role"] for c in table["columns"]] == ["Group", "Count"]
        assert sum(row[1] for row in table["rows"]) == 300


def test_small_cells_are_left_for_the_gate_and_patients_counted_once() -> None:
    rows = sparql_json(
        ["patient", "stage", "histology", "sex"],
        [
            {"patient": "urn:p:1", "stage": "I", "histology": "large cell", "sex": "male"},
            {"patient": "urn:p:1", "stage": "I", "histology": "nos", "sex": "male"},
            {"patient": "urn:p:2", "stage": "IIIb", "histology": "large cell"},
        ],
    )
    from pht_train.resultsets import parse_results

    counts, cohort = summarise(parse_results(rows).rows, ["stage", "histology", "sex"])
    assert cohort == 2
    assert counts["stage"] == {"I": 1, "IIIb": 1}
    assert counts["histology"] == {"large cell": 2, "nos": 1}
    assert counts["sex"] == {"male": 1, "missing": 1}
