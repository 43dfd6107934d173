"""Model rounds: the statistics against finite differences, statsmodels and lifelines, and the
disclosure rules a round must meet before any of it leaves the station."""

import json
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyoxigraph
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index

from pht_contract.aggregates import AggregateResult, AggregateSpec, AggregateStatus
from pht_contract.policies import DisclosurePolicy
from pht_station_api.aggregates.answers import Answer, Value, died, label, number, read_answer
from pht_station_api.aggregates.design import cox_design, glm_design
from pht_station_api.aggregates.models import (
    Family,
    FloatArray,
    RoundStatistics,
    cox_round,
    cox_statistics,
    glm_round,
    glm_statistics,
    harrell_concordance,
)
from pht_station_api.cohorts import cohort_bytes
from pht_station_api.disclosure.numbers import round_significant
from tests.station_api.aggregates.conftest import answer_of, example_query

POLICY = DisclosurePolicy()
STAGE_LEVELS = ["II", "IIIa", "IIIb"]
COVARIATES: list[dict[str, object]] = [
    {"variable": "age", "centre": 70, "scale": 10},
    {"variable": "sex", "levels": ["female"], "reference": "male"},
    {"variable": "stage", "levels": STAGE_LEVELS, "reference": "I"},
]
SURVIVAL = {"time": "days", "event": "dead"}
# Every stage II patient of the synthetic cohort died (no survivor: a level that is withheld),
# so Cox rounds on it leave stage II out.
COHORT_COX_COVARIATES: list[dict[str, object]] = [
    *COVARIATES[:2],
    {"variable": "stage", "levels": ["IIIa", "IIIb"], "reference": "I"},
]


def _glm_spec(**fields: object) -> AggregateSpec:
    document: dict[str, object] = {
        "name": "two-year-survival",
        "query": "cohort",
        "kind": "GlmRound",
        "family": "Binomial",
        "horizonOutcome": {"survival": SURVIVAL, "horizonDays": 730},
        "covariates": COVARIATES,
        "coefficients": {"parameter": "coefficients", "maxAbs": 20},
    }
    document.update(fields)
    return AggregateSpec.model_validate(document)


def _cox_spec(**fields: object) -> AggregateSpec:
    document: dict[str, object] = {
        "name": "survival-model",
        "query": "cohort",
        "kind": "CoxRound",
        "survival": SURVIVAL,
        "covariates": COVARIATES,
        "coefficients": {"parameter": "beta", "maxAbs": 20},
    }
    document.update(fields)
    return AggregateSpec.model_validate(document)


def _cohort_answer(patients: int = 300, seed: int = 7, hospital: int = 1) -> Answer:
    store = pyoxigraph.Store()
    store.load(cohort_bytes(patients, seed, hospital), format=pyoxigraph.RdfFormat.N_QUADS)
    return read_answer(answer_of(store, example_query("federated-logreg", "cohort")), "patient")


@pytest.fixture(scope="module")
def cohort(cohort_store: pyoxigraph.Store) -> Answer:
    body = answer_of(cohort_store, example_query("federated-logreg", "cohort"))
    return read_answer(body, "patient")


def _answer(rows: Sequence[Mapping[str, Value]], variables: Sequence[str]) -> Answer:
    records = tuple({"patient": f"https://h.example/p/{i}", **row} for i, row in enumerate(rows))
    return Answer(("patient", *variables), records, 0)


def _synthetic_rows(
    n: int, seed: int = 3, dead_share: float = 0.7, stages: Sequence[str] = ("I", *STAGE_LEVELS)
) -> list[dict[str, Value]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "age": float(rng.normal(68, 9)),
            "sex": str(rng.choice(["male", "female"])),
            "stage": str(stages[i % len(stages)]),
            "days": float(rng.integers(30, 1500)),
            "dead": bool(rng.random() < dead_share),
        }
        for i in range(n)
    ]


VARIABLES = ("age", "sex", "stage", "days", "dead")


def _reference_rows(
    answer: Answer, horizon: int | None, stages: Sequence[str] = STAGE_LEVELS
) -> pd.DataFrame:
    """The cohort's model columns read independently of the station's design code."""
    rows = []
    for record in answer.patients:
        age, days = number(record.get("age")), number(record.get("days"))
        dead = died(record.get("dead"))
        sex, stage = label(record.get("sex")), label(record.get("stage"))
        if age is None or days is None or dead is None or sex not in ("male", "female"):
            continue
        if stage not in ("I", *stages):
            continue
        row = {
            "age": (age - 70) / 10,
            "female": float(sex == "female"),
            **{f"stage_{level}": float(stage == level) for level in stages},
            "days": days,
            "dead": int(dead),
        }
        if horizon is not None:
            if days < horizon and not dead:
                continue
            row["alive"] = float(days >= horizon)
        rows.append(row)
    return pd.DataFrame(rows)


COLUMNS = ["age", "female", *(f"stage_{level}" for level in STAGE_LEVELS)]


# --- the maths ---------------------------------------------------------------------------------


def _finite_differences(
    statistics: Callable[[FloatArray], RoundStatistics], beta: FloatArray, step: float = 1e-5
) -> tuple[FloatArray, FloatArray]:
    """Central differences of the log-likelihood (gradient) and of the gradient (Hessian)."""
    size = beta.size
    gradient, hessian = np.zeros(size), np.zeros((size, size))
    for i in range(size):
        unit = np.eye(size)[i] * step
        up, down = statistics(beta + unit), statistics(beta - unit)
        gradient[i] = (up.log_likelihood - down.log_likelihood) / (2 * step)
        hessian[i] = (up.gradient - down.gradient) / (2 * step)
    return gradient, hessian


def _glm_data(family: Family, n: int = 400, seed: int = 11) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n) < 0.3, rng.normal(size=n)])
    truth = np.array([0.2, 0.5, -0.4, 0.3])
    eta = x @ truth
    if family == "Binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "Poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        y = eta + rng.normal(scale=1.5, size=n)
    return x.astype(float), y


@pytest.mark.parametrize("family", ["Binomial", "Gaussian", "Poisson"])
def test_glm_gradient_and_hessian_are_the_derivatives_of_the_log_likelihood(
    family: Family,
) -> None:
    x, y = _glm_data(family)
    beta = np.array([0.1, -0.3, 0.25, 0.4])

    def at(b: FloatArray) -> RoundStatistics:
        return glm_statistics(x, y, b, family)

    gradient, hessian = _finite_differences(at, beta)
    statistics = at(beta)
    np.testing.assert_allclose(statistics.gradient, gradient, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(statistics.hessian, hessian, rtol=1e-6, atol=1e-5)
    assert np.all(np.linalg.eigvalsh(statistics.hessian) < 0)


def _tied_survival(n: int, seed: int) -> tuple[FloatArray, np.ndarray, FloatArray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.random(n) < 0.4, rng.normal(50, 10, size=n)])
    time = rng.integers(1, 15, size=n).astype(float)  # few distinct times: many ties
    event = rng.random(n) < 0.7
    return x.astype(float), event, time


def test_cox_gradient_and_hessian_are_the_derivatives_of_efron_partial_likelihood() -> None:
    x, event, time = _tied_survival(250, seed=5)
    assert len(np.unique(time[event])) < event.sum() / 5
    beta = np.array([0.3, -0.5, 0.02])

    def at(b: FloatArray) -> RoundStatistics:
        return cox_statistics(time, event, x, b)

    gradient, hessian = _finite_differences(at, beta)
    statistics = at(beta)
    np.testing.assert_allclose(statistics.gradient, gradient, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(statistics.hessian, hessian, rtol=1e-6, atol=1e-5)
    assert np.all(np.linalg.eigvalsh(statistics.hessian) < 0)


def test_cox_partial_likelihood_of_two_tied_deaths_is_efrons_by_hand() -> None:
    # Three patients, two die together at t=1, the third is censored at t=2.
    x = np.array([[1.0], [0.0], [2.0]])
    time, event = np.array([1.0, 1.0, 2.0]), np.array([True, True, False])
    beta = np.array([0.7])
    r = np.exp(0.7 * x[:, 0])
    expected = 0.7 * 1.0 - math.log(r.sum()) - math.log(r.sum() - 0.5 * (r[0] + r[1]))
    assert cox_statistics(time, event, x, beta).log_likelihood == pytest.approx(expected, 1e-12)


def test_cox_statistics_stay_finite_and_shift_invariant_for_huge_linear_predictors() -> None:
    x, event, time = _tied_survival(120, seed=9)
    x[:, 2] *= 40.0  # η spans thousands: a naive exp() overflows
    beta = np.array([0.5, 1.0, 1.0])
    statistics = cox_statistics(time, event, x, beta)
    assert statistics.is_finite()
    shifted = cox_statistics(time, event, x + 1e3, beta)
    assert shifted.log_likelihood == pytest.approx(statistics.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(shifted.gradient, statistics.gradient, rtol=1e-7, atol=1e-7)


def test_binomial_log_likelihood_does_not_overflow_for_large_linear_predictors() -> None:
    x = np.array([[1.0, 800.0], [1.0, -800.0]])
    statistics = glm_statistics(x, np.array([1.0, 0.0]), np.array([0.0, 1.0]), "Binomial")
    assert statistics.is_finite()
    assert statistics.log_likelihood == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("family", "sm_family"),
    [
        ("Binomial", sm.families.Binomial()),
        ("Gaussian", sm.families.Gaussian()),
        ("Poisson", sm.families.Poisson()),
    ],
)
def test_glm_statistics_at_statsmodels_fit_have_zero_gradient_and_its_covariance(
    family: Family, sm_family: object
) -> None:
    x, y = _glm_data(family, n=600, seed=21)
    fit = sm.GLM(y, x, family=sm_family).fit(tol=1e-14, maxiter=200)
    statistics = glm_statistics(x, y, np.asarray(fit.params), family)
    np.testing.assert_allclose(statistics.gradient, 0.0, atol=1e-8)
    # Gaussian statistics have unit variance: the covariance is the scale times −H⁻¹.
    scale = float(fit.scale) if family == "Gaussian" else 1.0
    covariance = -np.linalg.inv(statistics.hessian) * scale
    np.testing.assert_allclose(covariance, np.asarray(fit.cov_params()), rtol=1e-6, atol=1e-10)
    if family != "Gaussian":
        assert statistics.log_likelihood == pytest.approx(float(fit.llf), rel=1e-10)


def _newton(
    rounds: Sequence[AggregateResult], beta: FloatArray
) -> tuple[FloatArray, FloatArray, float]:
    models = [result.model for result in rounds]
    assert all(model is not None for model in models)
    gradient = sum(np.array(model.gradient) for model in models if model is not None)
    hessian = sum(np.array(model.hessian) for model in models if model is not None)
    step = np.linalg.solve(np.asarray(hessian), np.asarray(gradient))
    return beta - step, np.asarray(hessian), float(np.abs(step).max())


def test_federated_binomial_round_converges_to_the_pooled_statsmodels_fit(cohort: Answer) -> None:
    spec = _glm_spec()
    terms = spec.terms()
    beta = np.zeros(len(terms))
    for _ in range(25):
        parameters = {"coefficients": dict(zip(terms, beta.tolist(), strict=True))}
        result = glm_round(spec, cohort, parameters, POLICY)
        assert result.status is AggregateStatus.RELEASED, result.rule
        beta, hessian, moved = _newton([result], beta)
        if moved < 1e-12:
            break
    frame = _reference_rows(cohort, horizon=730)
    fit = sm.GLM(
        frame["alive"], sm.add_constant(frame[COLUMNS]), family=sm.families.Binomial()
    ).fit(tol=1e-14, maxiter=200)
    np.testing.assert_allclose(beta, np.asarray(fit.params), atol=1e-6)
    np.testing.assert_allclose(
        np.sqrt(np.diag(-np.linalg.inv(hessian))), np.asarray(fit.bse), atol=1e-6
    )


def test_stratified_cox_over_three_stations_converges_to_lifelines_with_tied_times() -> None:
    stations = [_cohort_answer(300, seed=13, hospital=hospital) for hospital in (1, 2, 3)]
    # Hospital 3 has next to no stage II patients and hospital 2 under 5 stage IIIa survivors
    # (either would be withheld there): stage II and IIIa patients are left out of this model.
    stages = ["IIIb"]
    frames = []
    for number_, answer in enumerate(stations, start=1):
        frame = _reference_rows(answer, horizon=None, stages=stages)
        frame["station"] = number_
        frames.append(frame)
    pooled = pd.concat(frames, ignore_index=True)
    deaths = pooled[pooled["dead"] == 1]
    assert deaths.duplicated(["station", "days"]).sum() > 10  # Efron's ties matter here
    stage = {"variable": "stage", "levels": stages, "reference": "I"}
    spec = _cox_spec(covariates=[*COVARIATES[:2], stage])
    columns = ["age", "female", *(f"stage_{level}" for level in stages)]
    terms = spec.terms()
    beta = np.zeros(len(terms))
    for _ in range(25):
        parameters = {"beta": dict(zip(terms, beta.tolist(), strict=True))}
        rounds = [cox_round(spec, answer, parameters, POLICY) for answer in stations]
        assert all(r.status is AggregateStatus.RELEASED for r in rounds), [r.rule for r in rounds]
        beta, hessian, moved = _newton(rounds, beta)
        if moved < 1e-12:
            break
    fitter = CoxPHFitter().fit(
        pooled[[*columns, "days", "dead", "station"]],
        duration_col="days",
        event_col="dead",
        strata=["station"],
        fit_options={"precision": 1e-12},
    )
    np.testing.assert_allclose(beta, fitter.params_[columns].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(
        np.sqrt(np.diag(-np.linalg.inv(hessian))),
        fitter.standard_errors_[columns].to_numpy(),
        atol=1e-6,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_harrell_concordance_equals_lifelines_with_tied_times_and_tied_risks(seed: int) -> None:
    x, event, time = _tied_survival(300, seed=seed)
    # Two binary columns only: many patients share a risk, so ties in risk count 1/2.
    risk = np.column_stack([x[:, 0] > 0, x[:, 1]]) @ np.array([0.7, -0.4])
    assert len(np.unique(risk)) == 4 and len(np.unique(time)) < 20
    expected = concordance_index(time, -risk, event)  # lifelines: higher score, longer life
    assert harrell_concordance(time, event, risk) == pytest.approx(expected, abs=1e-12)


def test_harrell_concordance_counts_pairs_by_hand() -> None:
    time = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    event = np.array([True, True, False, True, False])
    risk = np.array([3.0, 1.0, 1.0, 2.0, 0.0])
    # Comparable: the death at 1 with 2, 2, 3, 4 (4 pairs, risk 3 above all: concordant); the
    # death at 2 with the patient censored at 2 (tied risk: 1/2), at 3 (risk 2 > 1: discordant)
    # and at 4 (concordant); the death at 3 with 4 (concordant). Two deaths at 2 would not pair.
    assert harrell_concordance(time, event, risk) == (4 + 0.5 + 0 + 1 + 1) / 8
    assert harrell_concordance(time, np.zeros(5, dtype=bool), risk) is None  # nobody died
    assert harrell_concordance(time, event, np.zeros(5)) == 0.5  # risk orders nothing


def test_a_released_cox_round_carries_the_stations_concordance(cohort: Answer) -> None:
    spec = _cox_spec(covariates=COHORT_COX_COVARIATES)
    coefficients = {"age": 0.2, "sex[female]": -0.3, "stage[IIIb]": 0.6, "stage[IIIa]": 0.4}
    result = cox_round(spec, cohort, {"beta": coefficients}, POLICY)
    assert result.status is AggregateStatus.RELEASED and result.model is not None
    design = cox_design(spec, cohort)
    beta = np.array(result.model.coefficients)
    expected = concordance_index(design.response, -(design.x @ beta), design.event)
    assert 0.55 < expected < 0.95  # stage orders survival in the synthetic cohort
    assert result.model.concordance == round_significant(expected, POLICY.significant_digits)
    at_zero = cox_round(spec, cohort, {"beta": {}}, POLICY).model
    assert at_zero is not None and at_zero.concordance == 0.5  # every risk tied
    glm = glm_round(_glm_spec(), cohort, {"coefficients": {}}, POLICY).model
    assert glm is not None and glm.concordance is None


# --- the design --------------------------------------------------------------------------------


def test_design_centres_scales_and_codes_indicators_against_the_reference() -> None:
    rows: list[dict[str, Value]] = [
        {"age": 80.0, "sex": "female", "stage": "IIIa", "days": 800.0, "dead": True},
        {"age": 60.0, "sex": "male", "stage": "I", "days": 100.0, "dead": True},
        {"age": 70.0, "sex": "male", "stage": "IV", "days": 900.0, "dead": False},
        {"age": None, "sex": "male", "stage": "I", "days": 900.0, "dead": False},
        {"age": 70.0, "sex": "male", "stage": "II", "days": 300.0, "dead": False},
    ]
    design = glm_design(_glm_spec(), _answer(rows, VARIABLES))
    assert design.terms == (
        "intercept",
        "age",
        "sex[female]",
        *(f"stage[{s}]" for s in ["II", "IIIa", "IIIb"]),
    )
    # Unlisted stage, unreadable age and censored before the horizon: left out.
    assert design.left_out == 3
    np.testing.assert_array_equal(
        design.x, [[1.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0, -1.0, 0.0, 0.0, 0.0, 0.0]]
    )
    np.testing.assert_array_equal(design.response, [1.0, 0.0])  # alive at 730 days; died before


@pytest.mark.parametrize(
    ("family", "kept"),
    [("Binomial", [0.0, 1.0]), ("Poisson", [0.0, 1.0, 3.0]), ("Gaussian", [0.0, 1.0, 3.0, -2.5])],
)
def test_an_outcome_the_family_cannot_model_leaves_the_patient_out(
    family: str, kept: list[float]
) -> None:
    rows: list[dict[str, Value]] = [
        {"age": 70.0, "y": value} for value in (0.0, 1.0, 3.0, -2.5, None, "many")
    ]
    spec = _glm_spec(
        family=family,
        horizonOutcome=None,
        outcome="y",
        intercept=False,
        covariates=COVARIATES[:1],
    )
    design = glm_design(spec, _answer(rows, ("age", "y")))
    assert design.terms == ("age",)
    np.testing.assert_array_equal(design.x, [[0.0]] * len(kept))
    assert design.response.tolist() == kept
    assert design.left_out == len(rows) - len(kept)


def test_an_unbound_value_is_the_missing_level_only_when_declared() -> None:
    rows: list[dict[str, Value]] = [{"days": 10.0, "dead": True}, {"days": 20.0, "dead": True}]
    covariate = {"variable": "stage", "levels": ["missing"], "reference": "I"}
    design = cox_design(_cox_spec(covariates=[covariate]), _answer(rows, VARIABLES))
    np.testing.assert_array_equal(design.x, [[1.0], [1.0]])
    covariate = {"variable": "stage", "levels": ["II"], "reference": "I"}
    assert cox_design(_cox_spec(covariates=[covariate]), _answer(rows, VARIABLES)).left_out == 2


# --- a released round ---------------------------------------------------------------------------


def test_a_released_cox_round_carries_full_precision_statistics(cohort: Answer) -> None:
    spec = _cox_spec(covariates=COHORT_COX_COVARIATES)
    coefficients = {"age": 0.123456789, "stage[IIIb]": 0.5}
    result = cox_round(spec, cohort, {"beta": coefficients}, POLICY)
    assert result.status is AggregateStatus.RELEASED and result.rule is None
    model = result.model
    assert model is not None
    assert model.terms == spec.terms()
    assert model.coefficients == [0.123456789, 0.0, 0.0, 0.5]
    design = cox_design(spec, cohort)
    expected = cox_statistics(design.response, design.event, design.x, np.array(model.coefficients))
    assert model.n == design.patients and model.events == int(design.event.sum())
    assert model.log_likelihood == expected.log_likelihood  # not rounded to 6 digits
    assert model.gradient == expected.gradient.tolist()
    assert model.hessian == expected.hessian.tolist()
    assert result.left_out == (design.left_out if design.left_out >= 5 else None)


def test_left_out_patients_are_counted_only_from_the_threshold_on() -> None:
    rows = _synthetic_rows(200)
    unreadable: dict[str, Value] = {"age": None, "sex": "male", "stage": "I", "days": 5.0}
    few, many = rows + [unreadable] * 4, rows + [unreadable] * 5
    spec = _cox_spec()
    assert cox_round(spec, _answer(few, VARIABLES), {"beta": {}}, POLICY).left_out is None
    assert cox_round(spec, _answer(many, VARIABLES), {"beta": {}}, POLICY).left_out == 5


def test_a_gaussian_round_on_a_numeric_outcome_is_released() -> None:
    rows = _synthetic_rows(150)
    spec = _glm_spec(
        family="Gaussian", horizonOutcome=None, outcome="age", covariates=COVARIATES[1:]
    )
    result = glm_round(spec, _answer(rows, VARIABLES), {"coefficients": {"intercept": 9.5}}, POLICY)
    assert result.status is AggregateStatus.RELEASED
    assert result.model is not None and result.model.hessian[0][0] == -150.0


# --- attacks and refusals -----------------------------------------------------------------------


def _refused(result: AggregateResult, status: AggregateStatus, rule: str) -> None:
    assert (result.status, result.rule) == (status, rule)
    assert result.model is None and result.table is None


@pytest.mark.parametrize(
    "coefficients",
    [{"age": 20.5}, {"stage[II]": -21}, {"age": 1e6}],
    ids=["beyond-the-train-bound", "negative-beyond", "isolating-one-patient"],
)
def test_coefficients_beyond_the_bound_are_refused(
    cohort: Answer, coefficients: dict[str, float]
) -> None:
    result = cox_round(_cox_spec(), cohort, {"beta": coefficients}, POLICY)
    _refused(result, AggregateStatus.WITHHELD, "CoefficientsOutOfBounds")
    assert "1000000" not in result.model_dump_json() and "20.5" not in result.model_dump_json()


def test_the_policy_ceiling_bounds_coefficients_below_the_trains_bound(cohort: Answer) -> None:
    strict = DisclosurePolicy.model_validate({"aggregates": {"maxAbsCoefficient": 2}})
    spec = _glm_spec()
    assert glm_round(spec, cohort, {"coefficients": {"age": 2}}, strict).status == "Released"
    result = glm_round(spec, cohort, {"coefficients": {"age": 2.01}}, strict)
    _refused(result, AggregateStatus.WITHHELD, "CoefficientsOutOfBounds")


def test_statistics_that_overflow_within_the_bound_are_withheld() -> None:
    rows = [{**row, "visits": float(i % 7)} for i, row in enumerate(_synthetic_rows(100))]
    spec = _glm_spec(
        family="Poisson", horizonOutcome=None, outcome="visits", covariates=[{"variable": "age"}]
    )
    answer = _answer(rows, (*VARIABLES, "visits"))
    result = glm_round(spec, answer, {"coefficients": {"age": 19}}, POLICY)  # e^(19·age)
    _refused(result, AggregateStatus.WITHHELD, "CoefficientsOutOfBounds")


@pytest.mark.parametrize(
    "parameters",
    [
        {"beta": {"age": float("nan")}},
        {"beta": {"age": float("inf")}},
        {"beta": {"age": "0.5"}},
        {"beta": {"age": True}},
        {"beta": {"age": None}},
        {"beta": {"age": [0.5]}},
        {"beta": [0.5, 0.1]},
        {"beta": "0.5"},
        {"coefficients": {"age": 0.5}},
        {"beta": {"age": 0.1, "patient_42": 3.0}},
        {"beta": {"intercept": 0.1}},
    ],
    ids=[
        "nan", "inf", "string", "bool", "null", "list", "not-an-object", "text",
        "other-parameter", "unknown-term", "no-intercept-in-cox",
    ],
)  # fmt: skip
def test_coefficients_that_are_not_numbers_by_known_term_fail(
    cohort: Answer, parameters: dict[str, object]
) -> None:
    result = cox_round(_cox_spec(), cohort, parameters, POLICY)
    _refused(result, AggregateStatus.FAILED, "CoefficientsMissing")
    assert "patient_42" not in result.model_dump_json()


def test_a_categorical_level_held_by_one_patient_is_withheld() -> None:
    parameters: dict[str, object] = {"beta": {}, "coefficients": {}}
    for round_, spec in ((cox_round, _cox_spec()), (glm_round, _glm_spec())):
        rows = _synthetic_rows(200, stages=("I", "II", "IIIa"))
        rows[0].update(stage="IIIb", days=1000.0)  # followed up past the horizon: kept
        result = round_(spec, _answer(rows, VARIABLES), parameters, POLICY)
        _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
        # Every other stage IIIa patient moved to IIIb: enough of each sex and each outcome.
        for row in [row for row in rows if row["stage"] == "IIIa"][::2]:
            row["stage"] = "IIIb"
        assert round_(spec, _answer(rows, VARIABLES), parameters, POLICY).status == "Released"


def test_a_small_reference_level_is_withheld_too() -> None:
    rows = _synthetic_rows(200, stages=("II", "IIIa", "IIIb"))
    rows[0]["stage"], rows[1]["stage"] = "I", "I"
    result = cox_round(_cox_spec(), _answer(rows, VARIABLES), {"beta": {}}, POLICY)
    _refused(result, AggregateStatus.WITHHELD, "MinCellCount")


def test_an_empty_level_is_withheld_only_while_zeros_are_disclosive() -> None:
    answer = _answer(_synthetic_rows(200, stages=("I", "II", "IIIa")), VARIABLES)
    result = cox_round(_cox_spec(), answer, {"beta": {}}, POLICY)
    _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
    lenient = DisclosurePolicy.model_validate({"aggregates": {"zerosAreDisclosive": False}})
    assert cox_round(_cox_spec(), answer, {"beta": {}}, lenient).status == "Released"


def test_an_all_dead_cohort_is_withheld() -> None:
    answer = _answer(_synthetic_rows(200, dead_share=1.0), VARIABLES)
    _refused(
        cox_round(_cox_spec(), answer, {"beta": {}}, POLICY),
        AggregateStatus.WITHHELD,
        "MinCellCount",
    )
    # Nobody alive at the horizon: every outcome is 0.
    rows = _synthetic_rows(200, dead_share=1.0)
    for row in rows:
        row["days"] = 700.0
    _refused(
        glm_round(_glm_spec(), _answer(rows, VARIABLES), {"coefficients": {}}, POLICY),
        AggregateStatus.WITHHELD,
        "MinCellCount",
    )


def test_a_binary_outcome_class_under_the_threshold_is_withheld() -> None:
    rows = _synthetic_rows(200)
    for i, row in enumerate(rows):
        row["outcome"] = 1.0 if i < 4 else 0.0
    # Age only: no categorical level whose own outcome classes could be small.
    spec = _glm_spec(horizonOutcome=None, outcome="outcome", covariates=COVARIATES[:1])
    result = glm_round(spec, _answer(rows, (*VARIABLES, "outcome")), {"coefficients": {}}, POLICY)
    _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
    rows[4]["outcome"] = 1.0
    result = glm_round(spec, _answer(rows, (*VARIABLES, "outcome")), {"coefficients": {}}, POLICY)
    assert result.status is AggregateStatus.RELEASED


CROSSED_COVARIATES: list[dict[str, object]] = [
    {"variable": "age", "centre": 70, "scale": 10},
    {"variable": "sex", "levels": ["female"], "reference": "male"},
    {"variable": "stage", "levels": ["II", "IIIb"], "reference": "I"},
]
CROSSED_VARIABLES = (*VARIABLES, "outcome")


def _crossed_rows(cells: Mapping[tuple[str, str], int]) -> list[dict[str, Value]]:
    """Patients per (sex, stage) cell; within each cell every other patient died (outcome 0)."""
    rows: list[dict[str, Value]] = []
    for (sex, stage), patients in cells.items():
        for i in range(patients):
            dead = i % 2 == 0
            age = 45.0 + (len(rows) * 7) % 40
            days = 100.0 + 11 * len(rows)
            rows.append(
                {"age": age, "sex": sex, "stage": stage, "days": days, "dead": dead}
                | {"outcome": 0.0 if dead else 1.0}
            )
    return rows


def _crossed_cells(**changed: int) -> dict[tuple[str, str], int]:
    cells = {(sex, stage): 20 for sex in ("male", "female") for stage in ("I", "II", "IIIb")}
    for name, patients in changed.items():
        sex, stage = name.split("_")
        cells[(sex, stage)] = patients
    return cells


def _crossed_rounds(
    rows: list[dict[str, Value]], coefficients: Mapping[str, float], policy: DisclosurePolicy
) -> list[AggregateResult]:
    answer = _answer(rows, CROSSED_VARIABLES)
    glm = _glm_spec(horizonOutcome=None, outcome="outcome", covariates=CROSSED_COVARIATES)
    cox = _cox_spec(covariates=CROSSED_COVARIATES)
    return [
        glm_round(glm, answer, {"coefficients": coefficients}, policy),
        cox_round(cox, answer, {"beta": coefficients}, policy),
    ]


def test_one_patient_at_two_levels_of_different_covariates_is_withheld() -> None:
    # Every level holds at least 20 patients, but only one is both female and stage IIIb: at
    # β = 0 the Hessian would count her, and a second round at sex[female] = stage[IIIb] = 1
    # would let her age be solved from the two Hessians.
    rows = _crossed_rows(_crossed_cells(female_II=19, female_IIIb=1))
    for coefficients in ({}, {"sex[female]": 1.0, "stage[IIIb]": 1.0}):
        for result in _crossed_rounds(rows, coefficients, POLICY):
            _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
    rows = _crossed_rows(_crossed_cells(female_II=15, female_IIIb=5))
    for result in _crossed_rounds(rows, {}, POLICY):
        assert result.status is AggregateStatus.RELEASED and result.model is not None


def test_few_patients_at_two_reference_levels_are_withheld_too() -> None:
    # male and stage I are the references: their patients are counted by the intercept (or the
    # other levels) less the indicators.
    for result in _crossed_rounds(_crossed_rows(_crossed_cells(male_I=4)), {}, POLICY):
        _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
    for result in _crossed_rounds(_crossed_rows(_crossed_cells(male_I=5)), {}, POLICY):
        assert result.status is AggregateStatus.RELEASED


def test_no_patient_at_two_levels_is_withheld_only_while_zeros_are_disclosive() -> None:
    rows = _crossed_rows(_crossed_cells(female_IIIb=0))
    for result in _crossed_rounds(rows, {}, POLICY):
        _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
    lenient = DisclosurePolicy.model_validate({"aggregates": {"zerosAreDisclosive": False}})
    for result in _crossed_rounds(rows, {}, lenient):
        assert result.status is AggregateStatus.RELEASED


def _with_stage_iiib_deaths(deaths: int) -> list[dict[str, Value]]:
    """The crossed cohort with ``deaths`` of its 40 stage IIIb patients dead (outcome 0)."""
    rows = _crossed_rows(_crossed_cells())
    for i, row in enumerate(row for row in rows if row["stage"] == "IIIb"):
        row["dead"] = i < deaths
        row["outcome"] = 0.0 if i < deaths else 1.0
    return rows


@pytest.mark.parametrize("survivors", [False, True])
def test_a_level_with_few_patients_of_one_outcome_class_is_withheld(survivors: bool) -> None:
    def rows_with(count: int) -> list[dict[str, Value]]:
        # count deaths (or count survivors) among the 40 stage IIIb patients.
        return _with_stage_iiib_deaths(40 - count if survivors else count)

    for result in _crossed_rounds(rows_with(POLICY.min_cell_count - 1), {}, POLICY):
        _refused(result, AggregateStatus.WITHHELD, "MinCellCount")
    for result in _crossed_rounds(rows_with(POLICY.min_cell_count), {}, POLICY):
        assert result.status is AggregateStatus.RELEASED


def test_an_empty_answer_releases_nothing() -> None:
    for result in (
        cox_round(_cox_spec(), _answer([], VARIABLES), {"beta": {}}, POLICY),
        glm_round(_glm_spec(), _answer([], VARIABLES), {"coefficients": {}}, POLICY),
    ):
        _refused(result, AggregateStatus.WITHHELD, "NoPatients")


def test_a_small_cohort_is_withheld() -> None:
    covariates = COVARIATES[:1]
    answer = _answer(_synthetic_rows(9, dead_share=0.5), VARIABLES)
    rules = {"minResidualDof": 1, "minEventsPerParameter": 1}
    policy = DisclosurePolicy.model_validate({"minCellCount": 2, "aggregates": rules})
    result = cox_round(_cox_spec(covariates=covariates), answer, {"beta": {}}, policy)
    _refused(result, AggregateStatus.WITHHELD, "MinCohort")


def test_too_few_residual_degrees_of_freedom_are_withheld() -> None:
    answer = _answer(_synthetic_rows(15), VARIABLES)
    rules = {"minResidualDof": 10}
    policy = DisclosurePolicy.model_validate({"minCellCount": 1, "aggregates": rules})
    spec = _glm_spec(family="Gaussian", horizonOutcome=None, outcome="days")
    result = glm_round(spec, answer, {"coefficients": {}}, policy)
    _refused(result, AggregateStatus.WITHHELD, "ResidualDof")  # 15 patients, 6 terms


def test_too_few_deaths_per_term_are_withheld() -> None:
    answer = _answer(_synthetic_rows(80, dead_share=0.5), VARIABLES)
    result = cox_round(_cox_spec(), answer, {"beta": {}}, POLICY)  # ~40 deaths, 5 terms × 10
    _refused(result, AggregateStatus.WITHHELD, "EventsPerParameter")
    spec = _cox_spec(covariates=COVARIATES[:1])
    assert cox_round(spec, answer, {"beta": {}}, POLICY).status == "Released"


def test_a_variable_the_query_does_not_select_fails() -> None:
    answer = _answer(_synthetic_rows(50), ("age", "sex", "stage", "days"))
    result = cox_round(_cox_spec(), answer, {"beta": {}}, POLICY)
    _refused(result, AggregateStatus.FAILED, "UnknownVariable")
    assert json.loads(result.model_dump_json(by_alias=True))["rule"] == "UnknownVariable"


def _pooled_stage(*also: str) -> list[dict[str, object]]:
    stage = {"variable": "stage", "levels": ["IIIa", "IIIb"], "reference": "I"}
    return [*COVARIATES[:2], {**stage, "alsoReference": list(also)} if also else stage]


def test_values_counted_with_the_reference_keep_their_patients_in_the_model() -> None:
    rows = _synthetic_rows(120)
    spec = _cox_spec(covariates=_pooled_stage("II"))
    design = cox_design(spec, _answer(rows, VARIABLES))
    assert design.terms == ("age", "sex[female]", "stage[IIIa]", "stage[IIIb]")
    assert design.left_out == 0
    stage_two = [i for i, row in enumerate(rows) if row["stage"] == "II"]
    assert stage_two and all(not design.x[i, 2:].any() for i in stage_two)
    # Without alsoReference, stage II is neither a level nor the reference: left out.
    alone = cox_design(_cox_spec(covariates=_pooled_stage()), _answer(rows, VARIABLES))
    assert alone.left_out == len(stage_two)


def test_a_small_reference_level_passes_when_pooled_with_another_value() -> None:
    rows = _synthetic_rows(200, stages=("II", "IIIa", "IIIb"))
    rows[0]["stage"], rows[1]["stage"] = "I", "I"
    alone = cox_round(
        _cox_spec(covariates=_pooled_stage()), _answer(rows, VARIABLES), {"beta": {}}, POLICY
    )
    _refused(alone, AggregateStatus.WITHHELD, "MinCellCount")
    pooled = cox_round(
        _cox_spec(covariates=_pooled_stage("II")), _answer(rows, VARIABLES), {"beta": {}}, POLICY
    )
    assert pooled.status is AggregateStatus.RELEASED and pooled.model is not None
    assert pooled.model.n == 200
