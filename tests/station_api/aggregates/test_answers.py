"""Reading an approved query's answer as the station does before computing aggregates."""

import json

import pyoxigraph
import pytest

from pht_station_api.aggregates.answers import AnswerUnreadable, died, label, number, read_answer
from tests.station_api.aggregates.conftest import answer_of, example_query


def test_the_survival_query_reads_one_record_per_patient(cohort_store: pyoxigraph.Store) -> None:
    body = answer_of(cohort_store, example_query("federated-logreg", "cohort"))
    answer = read_answer(body, "patient")
    assert answer.variables == ("patient", "age", "sex", "stage", "days", "dead")
    assert 250 <= len(answer.patients) <= 300
    assert answer.rows_without_patient == 0
    record = answer.patients[0]
    assert isinstance(record["days"], float) and record["days"] >= 0
    assert died(record["dead"]) in (True, False)
    assert label(record["sex"]) in ("male", "female")
    assert label(record["stage"]) in ("I", "II", "IIIa", "IIIb")


def test_a_patient_is_read_from_its_first_row_only() -> None:
    row = {"patient": {"type": "uri", "value": "https://h.example/p/1"}}
    first = {
        **row,
        "x": {
            "type": "literal",
            "value": "1",
            "datatype": "http://www.w3.org/2001/XMLSchema#integer",
        },
    }
    second = {
        **row,
        "x": {
            "type": "literal",
            "value": "2",
            "datatype": "http://www.w3.org/2001/XMLSchema#integer",
        },
    }
    unbound = {"x": {"type": "literal", "value": "3"}}
    body = json.dumps(
        {"head": {"vars": ["patient", "x"]}, "results": {"bindings": [first, second, unbound]}}
    )
    answer = read_answer(body.encode(), "patient")
    assert [dict(p) for p in answer.patients] == [{"patient": "https://h.example/p/1", "x": 1.0}]
    assert answer.rows_without_patient == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"head": {}}',
        b'{"boolean": true}',
        b'{"head": {"vars": []}, "results": {"bindings": [1]}}',
    ],
)
def test_an_answer_that_is_not_select_results_is_refused_without_echoing_it(body: bytes) -> None:
    with pytest.raises(AnswerUnreadable) as refused:
        read_answer(body, "patient")
    assert body.decode() not in str(refused.value) or not body


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, True),
        (0.0, False),
        ("dead", True),
        ("Alive", False),
        (True, True),
        ("maybe", None),
        (None, None),
        (2.0, None),
    ],
)
def test_vital_status(value: str | float | bool | None, expected: bool | None) -> None:
    assert died(value) is expected


def test_numbers_and_labels() -> None:
    assert number("12.5") == 12.5 and number("nan") is None and number(True) is None
    assert label("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C48728") == "T3"
    assert label("https://other.example/codes#X1") == "X1"
    assert label(3.0) == "3" and label(None) is None


def test_only_iris_the_store_knows_as_patients_are_read() -> None:
    real = {"type": "uri", "value": "https://h.example/p/1"}
    minted = {"type": "uri", "value": "https://h.example/p/1/copy-a"}
    body = json.dumps(
        {
            "head": {"vars": ["patient"]},
            "results": {"bindings": [{"patient": real}, {"patient": minted}]},
        }
    ).encode()
    answer = read_answer(body, "patient", frozenset({b"https://h.example/p/1"}))
    assert [p["patient"] for p in answer.patients] == ["https://h.example/p/1"]
    assert answer.rows_without_patient == 1
