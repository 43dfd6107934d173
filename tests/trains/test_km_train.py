"""The Kaplan–Meier train end to end against the gateway double and a generated cohort."""

from typing import Any

import pytest
from cohort_answers import answer, manifest_query, sparql_json
from kaplan_meier.estimators import kaplan_meier
from kaplan_meier.records import follow_up_days, vital_status
from kaplan_meier.train import estimate

DEAD = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C28554"
ALIVE = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C37987"


def rows_of(table: dict[str, Any]) -> list[dict[str, Any]]:
    names = [c["name"] for c in table["columns"]]
    return [dict(zip(names, row, strict=True)) for row in table["rows"]]


def test_survival_by_stage_on_a_generated_cohort(station_run: Any) -> None:
    query = manifest_query("kaplan-meier.yaml")
    document = answer(query[1], patients=300)
    manifest = station_run(estimate, query, document, {"timePoints": [365, 730, 1095]})
    (table,) = manifest["tables"]
    assert table["cohortSize"] == 300
    roles = {c["name"]: c["role"] for c in table["columns"]}
    assert roles["at_risk"] == roles["events"] == "Count"
    rows = rows_of(table)
    assert {r["stage"] for r in rows} == {"I", "II", "IIIa", "IIIb", "All"}
    assert [r["days"] for r in rows if r["stage"] == "All"] == [365, 730, 1095]
    # Independently: the overall curve from the raw answer.
    bindings = document["results"]["bindings"]
    times = [float(b["days"]["value"]) for b in bindings]
    events = [b["dead"]["value"] == DEAD for b in bindings]
    expected = kaplan_meier(times, events, [365, 730, 1095])
    overall = [r for r in rows if r["stage"] == "All"]
    assert [r["survival"] for r in overall] == pytest.approx([p.survival for p in expected])
    assert [r["at_risk"] for r in overall] == [p.at_risk for p in expected]
    # Stage I lives longer than IIIb in the generated cohort, as in Lung1.
    two_years = {r["stage"]: r["survival"] for r in rows if r["days"] == 730}
    assert two_years["I"] > two_years["IIIb"]
    # Counts per stage add up to the whole cohort at day 0's risk set.
    assert sum(r["events"] + r["censored"] for r in rows if r["stage"] != "All") == sum(
        r["events"] + r["censored"] for r in overall
    )


def test_unreadable_rows_are_left_out_of_table_and_cohort(station_run: Any) -> None:
    query = ("survival", "SELECT ?patient ?stage ?days ?dead WHERE { }")
    document = sparql_json(
        ["patient", "stage", "days", "dead"],
        [
            {"patient": "urn:p:1", "stage": "I", "days": 100, "dead": DEAD},
            {"patient": "urn:p:1", "stage": "I", "days": 100, "dead": DEAD},  # duplicate row
            {"patient": "urn:p:2", "stage": "I", "days": 400, "dead": ALIVE},
            {"patient": "urn:p:3", "stage": "II", "days": 50},  # no vital status
            {"patient": "urn:p:4", "days": 500, "dead": True},  # no stage
        ],
    )
    manifest = station_run(estimate, query, document, {"timePoints": [365]})
    (table,) = manifest["tables"]
    assert table["cohortSize"] == 3
    assert {(r["stage"], r["at_risk"], r["events"]) for r in rows_of(table)} == {
        ("I", 1, 1),
        ("missing", 1, 0),
        ("All", 2, 1),
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [(DEAD, True), (ALIVE, False), (True, True), (0, False), ("deceased", True), ("x", None)],
)
def test_vital_status_spellings(value: Any, expected: bool | None) -> None:
    assert vital_status(value) is expected


def test_follow_up_days() -> None:
    assert follow_up_days(512) == 512.0
    assert follow_up_days("30.5") == 30.5
    assert follow_up_days(-1) is None
    assert follow_up_days(float("nan")) is None
    assert follow_up_days(True) is None
