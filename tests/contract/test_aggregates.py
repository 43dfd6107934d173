"""Declaring station-computed aggregates in a Train: what a declaration must say, per kind."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pht_contract.aggregates import AggregateKind, AggregateSpec, TimeGrid
from pht_contract.evaluation import evaluate
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec

REPO = Path(__file__).resolve().parents[2]
SURVIVAL_QUERY = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())[
    "spec"
]["queries"][0]["sparql"]

SURVIVAL = {"time": "days", "event": "dead"}


def _spec(**aggregate: Any) -> dict[str, Any]:
    return {
        "image": "ghcr.io/pht-station/trains/km@sha256:" + "a" * 64,
        "queries": [{"name": "survival", "sparql": SURVIVAL_QUERY}],
        "requester": {"name": "R", "organisation": "maastro", "contact": "r@example.org"},
        "purpose": "test",
        "aggregates": [{"name": "agg", "query": "survival", **aggregate}],
    }


def test_a_kaplan_meier_declaration_reads_its_grid() -> None:
    spec = TrainSpec.model_validate(
        _spec(kind="KaplanMeier", survival=SURVIVAL, grid={"stepDays": 182, "endDays": 1826})
    )
    assert spec.aggregates is not None
    grid = spec.aggregates[0].grid
    assert grid is not None and grid.points()[:3] == [182, 364, 546] and grid.points()[-1] == 1820


@pytest.mark.parametrize(
    ("aggregate", "message"),
    [
        ({"kind": "KaplanMeier", "survival": SURVIVAL}, "needs grid"),
        ({"kind": "Summary"}, "needs variable"),
        (
            {"kind": "CoxRound", "survival": SURVIVAL, "covariates": [{"variable": "age"}]},
            "needs coefficients",
        ),
        (
            {
                "kind": "CoxRound",
                "survival": SURVIVAL,
                "covariates": [{"variable": "age"}],
                "by": ["stage"],
                "coefficients": {"parameter": "beta", "maxAbs": 5},
            },
            "no 'by'",
        ),
        ({"kind": "Count", "covariates": [{"variable": "age"}]}, "belong to model rounds"),
        (
            {
                "kind": "GlmRound",
                "family": "Binomial",
                "coefficients": {"parameter": "b", "maxAbs": 5},
            },
            "exactly one of outcome",
        ),
        (
            {
                "kind": "GlmRound",
                "family": "Gaussian",
                "horizonOutcome": {"survival": SURVIVAL, "horizonDays": 730},
                "coefficients": {"parameter": "b", "maxAbs": 5},
            },
            "Binomial only",
        ),
        (
            {
                "kind": "CoxRound",
                "survival": SURVIVAL,
                "coefficients": {"parameter": "b", "maxAbs": 5},
                "covariates": [{"variable": "stage", "levels": ["II"]}],
            },
            "both levels and reference",
        ),
        (
            {
                "kind": "CoxRound",
                "survival": SURVIVAL,
                "coefficients": {"parameter": "b", "maxAbs": 5},
                "covariates": [{"variable": "age", "alsoReference": ["II"]}],
            },
            "alsoReference belongs to a categorical covariate",
        ),
        (
            {
                "kind": "CoxRound",
                "survival": SURVIVAL,
                "coefficients": {"parameter": "b", "maxAbs": 5},
                "covariates": [
                    {
                        "variable": "stage",
                        "levels": ["II"],
                        "reference": "I",
                        "alsoReference": ["II"],
                    }
                ],
            },
            "values that are not levels",
        ),
        (
            {
                "kind": "CoxRound",
                "survival": SURVIVAL,
                "coefficients": {"parameter": "b", "maxAbs": 5},
                "covariates": [{"variable": "age"}, {"variable": "age"}],
            },
            "same model term twice",
        ),
        ({"kind": "Count", "query": "other"}, "queries the Train does not declare"),
        ({"kind": "Count", "by": ["?patient"]}, "string_pattern_mismatch"),
    ],
)
def test_a_declaration_that_does_not_fit_its_kind_is_refused(
    aggregate: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        TrainSpec.model_validate(_spec(**aggregate))
    assert message in str(refused.value)


def test_a_train_declares_at_most_one_model_round() -> None:
    # Two rounds in one Train would release statistics at two sets of coefficients under one
    # approval (enough to solve for what one round alone does not tell).
    glm = {
        "query": "survival",
        "kind": "GlmRound",
        "family": "Binomial",
        "outcome": "dead",
        "covariates": [{"variable": "age"}],
        "coefficients": {"parameter": "first", "maxAbs": 5},
    }
    cox = {
        "query": "survival",
        "kind": "CoxRound",
        "survival": SURVIVAL,
        "covariates": [{"variable": "age"}],
        "coefficients": {"parameter": "second", "maxAbs": 5},
    }
    count = {"name": "patients", "query": "survival", "kind": "Count"}
    for second in ({**glm, "name": "again"}, {**cox, "name": "again"}):
        document = _spec(**glm)
        document["aggregates"].append(second)
        with pytest.raises(ValidationError, match="at most one model round"):
            TrainSpec.model_validate(document)
    document = _spec(**cox)
    document["aggregates"].append(count)
    assert len(TrainSpec.model_validate(document).aggregates or []) == 2


def test_model_terms_follow_the_covariates_in_order() -> None:
    spec = AggregateSpec.model_validate(
        {
            "name": "round",
            "query": "cohort",
            "kind": "GlmRound",
            "family": "Binomial",
            "outcome": "alive",
            "covariates": [
                {"variable": "age", "centre": 70, "scale": 10},
                {"variable": "stage", "levels": ["II", "IIIa"], "reference": "I"},
            ],
            "coefficients": {"parameter": "coefficients", "maxAbs": 20},
        }
    )
    assert spec.kind is AggregateKind.GLM_ROUND
    assert spec.terms() == ["intercept", "age", "stage[II]", "stage[IIIa]"]


def test_a_grid_has_a_bounded_number_of_points() -> None:
    with pytest.raises(ValidationError, match="at most 120 points"):
        TimeGrid(step_days=1, end_days=365)


def _example_policy() -> StationPolicySpec:
    document = yaml.safe_load((REPO / "examples" / "policies" / "station-policy.yaml").read_text())
    return StationPolicySpec.model_validate(document["spec"])


def test_admission_groups_only_by_releasable_categories() -> None:
    policy = _example_policy()
    fine = TrainSpec.model_validate(_spec(kind="Count", by=["stage", "sex"]))
    assert not [v for v in evaluate(fine, policy).violations if v.reason == "AggregateNotAllowed"]
    for by, where in ((["patient"], "by[0]"), (["stage", "days"], "by[1]")):
        refused = evaluate(TrainSpec.model_validate(_spec(kind="Count", by=by)), policy)
        reasons = [(v.reason, v.field) for v in refused.violations]
        assert ("AggregateNotAllowed", f"spec.aggregates[0].{where}") in reasons


def test_admission_caps_the_coefficients_a_round_may_carry() -> None:
    policy = _example_policy()
    ceiling = policy.disclosure.aggregates.max_abs_coefficient
    cox = {"kind": "CoxRound", "survival": SURVIVAL, "covariates": [{"variable": "age"}]}
    within = _spec(**cox, coefficients={"parameter": "beta", "maxAbs": ceiling})
    beyond = _spec(**cox, coefficients={"parameter": "beta", "maxAbs": ceiling * 2})
    assert not evaluate(TrainSpec.model_validate(within), policy).violations
    refused = evaluate(TrainSpec.model_validate(beyond), policy).violations
    assert [(v.reason, v.field) for v in refused] == [
        ("AggregateNotAllowed", "spec.aggregates[0].coefficients.maxAbs")
    ]
