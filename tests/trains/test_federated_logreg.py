"""The federated logistic-regression step: its sums are the log-likelihood's derivatives, and
Newton rounds over several stations reach the pooled fit."""

from typing import Any

import numpy as np
import pytest
from cohort_answers import answer, manifest_query, sparql_json
from federated_logreg.features import FEATURES, Scaling, design, outcome
from federated_logreg.newton import (
    LocalStep,
    combine,
    from_statistics,
    local_step,
    newton_update,
    to_statistics,
)
from federated_logreg.train import step

from pht_train.resultsets import parse_results

QUERY = manifest_query("federated-logreg.yaml")


def log_likelihood(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    """Written out directly, independently of the train's code."""
    p = 1 / (1 + np.exp(-(x @ beta)))
    return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def station_design(hospital: int, patients: int = 300) -> tuple[np.ndarray, np.ndarray]:
    data = design(parse_results(answer(QUERY[1], patients, 0, hospital)).rows, Scaling())
    return data.x, data.y


def test_gradient_and_hessian_are_the_log_likelihoods_derivatives() -> None:
    x, y = station_design(1)
    beta = np.array([0.3, -0.2, 0.1, -0.4, -0.6, -0.9])
    local = local_step(x, y, beta)
    assert local.log_likelihood == pytest.approx(log_likelihood(x, y, beta))
    h = 1e-5
    basis = np.eye(len(beta))
    numeric_gradient = [
        (log_likelihood(x, y, beta + h * e) - log_likelihood(x, y, beta - h * e)) / (2 * h)
        for e in basis
    ]
    assert local.gradient == pytest.approx(numeric_gradient, rel=1e-5, abs=1e-5)
    numeric_hessian = np.array(
        [
            (local_step(x, y, beta + h * e).gradient - local_step(x, y, beta - h * e).gradient)
            / (2 * h)
            for e in basis
        ]
    )
    assert local.hessian == pytest.approx(numeric_hessian, rel=1e-4, abs=1e-4)


def test_newton_over_three_stations_matches_the_pooled_fit() -> None:
    stations = [station_design(h) for h in (1, 2, 3)]
    beta = np.zeros(len(FEATURES))
    for _ in range(25):
        pooled = combine(local_step(x, y, beta) for x, y in stations)
        new = newton_update(beta, pooled)
        if np.max(np.abs(new - beta)) < 1e-10:
            break
        beta = new
    else:
        pytest.fail("Newton did not converge in 25 rounds")
    # The pooled fit by a different method: gradient ascent on all rows in one place.
    x = np.vstack([x for x, _ in stations])
    y = np.concatenate([y for _, y in stations])
    pooled_beta = np.zeros(len(FEATURES))
    step_size = 4.0 / np.linalg.eigvalsh(x.T @ x).max()
    for _ in range(20_000):
        p = 1 / (1 + np.exp(-(x @ pooled_beta)))
        pooled_beta += step_size * x.T @ (y - p)
    assert beta == pytest.approx(pooled_beta, abs=1e-4)
    assert log_likelihood(x, y, beta) >= log_likelihood(x, y, pooled_beta) - 1e-9


def test_statistics_round_trip_through_the_manifest_names() -> None:
    x, y = station_design(2, patients=120)
    local = local_step(x, y, np.full(len(FEATURES), 0.1))
    back = from_statistics(to_statistics(local, FEATURES), local.n, FEATURES)
    assert back.gradient == pytest.approx(local.gradient)
    assert back.hessian == pytest.approx(local.hessian)
    assert np.allclose(back.hessian, back.hessian.T)


def test_the_train_uploads_statistics_only(station_run: Any) -> None:
    coefficients = {"intercept": 0.5, "age": -0.1, "stage_iiib": -1.0}
    manifest = station_run(
        step, QUERY, answer(QUERY[1], patients=300), {"coefficients": coefficients}
    )
    assert manifest["tables"] == [] and manifest["models"] == []
    values = {s["name"]: s["value"] for s in manifest["statistics"]}
    ns = {s["n"] for s in manifest["statistics"]}
    x, y = station_design(1)
    assert ns == {len(y)} and values["n"] == len(y)
    beta = np.array([coefficients.get(f, 0.0) for f in FEATURES])
    expected = local_step(x, y, beta)
    got = from_statistics(values, int(values["n"]), FEATURES)
    assert got.gradient == pytest.approx(expected.gradient)
    assert got.hessian == pytest.approx(expected.hessian)
    assert len(manifest["statistics"]) == 2 + 6 + 21


def test_outcomes_and_exclusions() -> None:
    assert outcome(800, dead=True, horizon=730) == 1.0
    assert outcome(100, dead=True, horizon=730) == 0.0
    assert outcome(100, dead=False, horizon=730) is None
    dead = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C28554"
    male = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C20197"
    rows = sparql_json(
        ["patient", "age", "sex", "stage", "days", "dead"],
        [
            {
                "patient": "urn:1",
                "age": 80.0,
                "sex": male,
                "stage": "IIIa",
                "days": 90,
                "dead": dead,
            },
            {"patient": "urn:2", "age": 60.0, "sex": male, "stage": "IV", "days": 90, "dead": dead},
            {"patient": "urn:3", "sex": male, "stage": "I", "days": 90, "dead": dead},
        ],
    )
    data = design(parse_results(rows).rows, Scaling())
    assert data.x.tolist() == [[1.0, 1.0, 1.0, 0.0, 1.0, 0.0]]
    assert data.y.tolist() == [0.0] and data.excluded == 2


def test_unknown_coefficients_are_refused(station_run: Any) -> None:
    with pytest.raises(AssertionError, match="the train failed"):
        station_run(step, QUERY, answer(QUERY[1], patients=50), {"coefficients": {"bmi": 1}})


def test_combine_needs_a_station() -> None:
    with pytest.raises(ValueError):
        combine([])
    one = LocalStep(1, 0.0, np.zeros(2), np.eye(2))
    assert combine([one, one]).n == 2
