"""Gateway answers become typed rows and columns."""

from datetime import UTC, date, datetime

import pytest

from pht_train import ResultFormatError
from pht_train.resultsets import parse_results
from pht_train.terms import XSD, convert_term


def literal(value: str, datatype: str | None = None) -> dict[str, str]:
    term = {"type": "literal", "value": value}
    if datatype:
        term["datatype"] = XSD + datatype
    return term


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (literal("42", "integer"), 42),
        (literal("-3", "int"), -3),
        (literal("7", "nonNegativeInteger"), 7),
        (literal("69.5", "decimal"), 69.5),
        (literal("1.0E2", "double"), 100.0),
        (literal("INF", "float"), float("inf")),
        (literal("true", "boolean"), True),
        (literal("0", "boolean"), False),
        (literal("2019-10-01", "date"), date(2019, 10, 1)),
        (literal("2019-10-01Z", "date"), date(2019, 10, 1)),
        (
            literal("2019-10-01T12:00:00Z", "dateTime"),
            datetime(2019, 10, 1, 12, tzinfo=UTC),
        ),
        (literal("IIIa"), "IIIa"),
        ({"type": "literal", "value": "male", "xml:lang": "en"}, "male"),
        (literal("P1D", "duration"), "P1D"),
        ({"type": "uri", "value": "http://ex.org/a"}, "http://ex.org/a"),
        ({"type": "bnode", "value": "b0"}, "_:b0"),
        ({"type": "typed-literal", "value": "5", "datatype": XSD + "integer"}, 5),
    ],
)
def test_terms_become_python_values(term: dict[str, str], expected: object) -> None:
    value = convert_term(term)
    assert value == expected
    assert type(value) is type(expected)


def test_a_malformed_literal_is_an_error_that_does_not_quote_it() -> None:
    with pytest.raises(ResultFormatError) as error:
        convert_term(literal("LUNG1-001", "integer"))
    assert "LUNG1" not in str(error.value)
    assert "integer" in str(error.value)


def test_rows_and_columns() -> None:
    document = {
        "head": {"vars": ["patient", "days", "dead"]},
        "results": {
            "bindings": [
                {
                    "patient": {"type": "uri", "value": "urn:p:1"},
                    "days": literal("120", "integer"),
                    "dead": literal("true", "boolean"),
                },
                {"patient": {"type": "uri", "value": "urn:p:2"}, "days": literal("30", "integer")},
            ]
        },
    }
    result = parse_results(document)
    assert result.variables == ("patient", "days", "dead")
    assert list(result) == [
        {"patient": "urn:p:1", "days": 120, "dead": True},
        {"patient": "urn:p:2", "days": 30, "dead": None},
    ]
    assert result.columns() == {
        "patient": ["urn:p:1", "urn:p:2"],
        "days": [120, 30],
        "dead": [True, None],
    }
    assert len(result) == 2
    with pytest.raises(KeyError):
        result.column("age")


def test_ask_answers() -> None:
    assert parse_results({"head": {}, "boolean": True}).boolean is True


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"results": {"bindings": []}},
        {"head": {"vars": ["a"]}},
        {"head": {"vars": ["a"]}, "results": {"bindings": [[1]]}},
        {"head": {"vars": ["a"]}, "results": {"bindings": [{"a": {"value": "x"}}]}},
        {"head": {}, "boolean": "yes"},
    ],
)
def test_malformed_answers_are_refused(document: object) -> None:
    with pytest.raises(ResultFormatError):
        parse_results(document)
