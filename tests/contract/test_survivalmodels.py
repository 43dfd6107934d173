"""The released Cox model: encoding new patients as the stations did, hazard ratios, refusals."""

import math

import pytest
from pydantic import ValidationError

from pht_contract.survivalmodels import CoxModel, RecordError, RecordValue

COVARIATES: list[dict[str, object]] = [
    {"variable": "age", "centre": 70, "scale": 10},
    {"variable": "sex", "levels": ["female"], "reference": "male"},
    {"variable": "t", "levels": ["T2", "T3", "T4"], "reference": "T1"},
]
TERMS = ["age", "sex[female]", "t[T2]", "t[T3]", "t[T4]"]
COEFFICIENTS = [0.25, -0.4, 0.1, 0.3, 0.6]


def _model(**fields: object) -> CoxModel:
    document: dict[str, object] = {
        "covariates": COVARIATES,
        "terms": TERMS,
        "coefficients": COEFFICIENTS,
        "standardErrors": [0.05, 0.1, 0.12, 0.15, 0.11],
        "strata": [{"name": "hospital-1", "patients": 290, "events": 255, "concordance": 0.61}],
    }
    document.update(fields)
    return CoxModel.model_validate(document)


def test_a_record_is_encoded_as_the_stations_encoded_theirs() -> None:
    model = _model()
    record: dict[str, RecordValue] = {"age": 85, "sex": "female", "t": "T3"}
    assert model.encode(record) == [1.5, 1.0, 0.0, 1.0, 0.0]
    assert model.linear_predictor(record) == pytest.approx(0.25 * 1.5 - 0.4 + 0.3)
    reference: dict[str, RecordValue] = {"age": 70.0, "sex": "male", "t": "T1"}
    assert model.linear_predictor(reference) == 0.0


def test_hazard_ratios_compare_two_patients_and_each_term() -> None:
    model = _model()
    older = {"age": 80.0, "sex": "male", "t": "T4"}
    younger = {"age": 60.0, "sex": "male", "t": "T4"}
    assert model.hazard_ratio(older, younger) == pytest.approx(math.exp(0.25 * 2))
    assert model.hazard_ratio(younger, older) == pytest.approx(math.exp(-0.5))
    ratios = {ratio.term: ratio for ratio in model.hazard_ratios()}
    t4 = ratios["t[T4]"]
    assert t4.hazard_ratio == pytest.approx(math.exp(0.6))
    assert t4.lower == pytest.approx(math.exp(0.6 - 1.959964 * 0.11))
    assert t4.upper == pytest.approx(math.exp(0.6 + 1.959964 * 0.11))
    assert ratios["sex[female]"].upper < 1  # 0.4 / 0.1 standard errors from 0


def test_the_model_survives_its_json_file() -> None:
    model = _model()
    text = model.model_dump_json(by_alias=True)
    assert '"standardErrors"' in text and '"ties":"Efron"' in text
    loaded = CoxModel.model_validate_json(text)
    assert loaded == model
    assert loaded.covariates[2].reference == "T1" and loaded.strata[0].concordance == 0.61


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"age": 70.0, "sex": "male", "t": "T5"}, "t: unknown level 'T5' (the model knows T1, T2"),
        ({"age": 70.0, "sex": "other", "t": "T1"}, "sex: unknown level 'other'"),
        ({"age": 70.0, "t": "T1"}, "sex: unknown level no value"),
        ({"age": "old", "sex": "male", "t": "T1"}, "age: a number is needed"),
        ({"sex": "male", "t": "T1"}, "age: a number is needed"),
        ({"age": True, "sex": "male", "t": "T1"}, "age: a number is needed"),
        ({"age": math.nan, "sex": "male", "t": "T1"}, "age: a finite number is needed"),
    ],
    ids=["unknown-level", "unknown-sex", "no-sex", "text-age", "no-age", "bool-age", "nan-age"],
)
def test_a_record_the_model_cannot_encode_is_refused_clearly(
    record: dict[str, RecordValue], message: str
) -> None:
    with pytest.raises(RecordError) as raised:
        _model().linear_predictor(record)
    assert str(raised.value).startswith(message)


def test_a_declared_missing_level_takes_an_absent_value() -> None:
    t_or_missing = {"variable": "t", "levels": ["T2", "missing"], "reference": "T1"}
    covariates = [*COVARIATES[:2], t_or_missing]
    model = _model(
        covariates=covariates,
        terms=["age", "sex[female]", "t[T2]", "t[missing]"],
        coefficients=[0.25, -0.4, 0.1, 0.2],
        standardErrors=[0.05, 0.1, 0.12, 0.15],
    )
    assert model.encode({"age": 70.0, "sex": "male"}) == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"terms": ["age", "sex[female]", "t[T2]", "t[T3]", "t[T5]"]}, "covariates' columns"),
        ({"coefficients": COEFFICIENTS[:4]}, "same length"),
        ({"standardErrors": [0.05, 0.1, 0.12, 0.15, 0.0]}, "greater than 0"),
        ({"coefficients": [0.25, -0.4, 0.1, 0.3, math.inf]}, "finite number"),
        ({"baseline": [0.9, 0.8]}, "Extra inputs"),
    ],
    ids=["terms-not-the-covariates", "too-few-coefficients", "zero-error", "inf", "baseline"],
)
def test_an_inconsistent_model_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _model(**fields)


def test_values_counted_with_the_reference_are_encoded_as_the_reference() -> None:
    pooled = {"variable": "t", "levels": ["T3", "T4"], "reference": "T1", "alsoReference": ["T2"]}
    model = _model(
        covariates=[*COVARIATES[:2], pooled],
        terms=["age", "sex[female]", "t[T3]", "t[T4]"],
        coefficients=[0.25, -0.4, 0.3, 0.6],
        standardErrors=[0.05, 0.1, 0.15, 0.11],
    )
    assert model.encode({"age": 70, "sex": "male", "t": "T2"}) == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(RecordError, match="T1, T2, T3, T4"):
        model.encode({"age": 70, "sex": "male", "t": "T0"})
