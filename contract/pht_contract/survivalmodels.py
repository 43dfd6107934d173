"""A released Cox proportional hazards model that a researcher can load and apply.

A federated Cox fit (Newton rounds over stations, each station its own stratum; see
:class:`~pht_contract.aggregates.AggregateKind` ``CoxRound``) ends in coefficients, their
standard errors from the summed Hessian, and the covariate encoding the rounds were declared
with. :class:`CoxModel` keeps all of that together so new patient records are encoded exactly
as the stations encoded theirs.

The model is stratified by station: every station has its own baseline hazard, and none of
them leaves a station, so there is **no shared baseline hazard** and the model predicts no
absolute survival probability. What it gives is relative: a patient's linear predictor and the
hazard ratio between two patients (valid within any one stratum, as the model assumes the
same coefficients in all of them).
"""

import math
from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import Field, model_validator

from pht_contract.aggregates import MAX_COVARIATES, Covariate
from pht_contract.base import ApiModel, DnsLabel

#: The standard normal quantile for a two-sided 95 % confidence interval.
Z_95: Final = 1.959963984540054
MISSING_LEVEL: Final = "missing"

#: A value of one patient record: a number, a category label, or absent (``None``).
RecordValue = float | int | str | None
Term = Annotated[str, Field(max_length=160)]


class RecordError(ValueError):
    """A patient record the model cannot encode (says which covariate and why)."""


class CoxStratum(ApiModel):
    """One station's share of the fit, as released with its last round."""

    name: DnsLabel
    """The station."""
    patients: int = Field(ge=0)
    """Patients in the station's round."""
    events: int = Field(ge=0)
    """Deaths in the station's round."""
    concordance: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    """The station's Harrell C-index at the model's coefficients, as the station released it."""


class HazardRatio(ApiModel):
    """exp(coefficient) of one term with its confidence interval."""

    term: Term
    hazard_ratio: float
    lower: float
    upper: float


class CoxModel(ApiModel):
    """A Cox model stratified by station, with Efron's handling of tied death times.

    ``terms`` are the covariates' columns in order (``age``, ``sex[female]``, …), ``coefficients``
    and ``standardErrors`` follow them. A numeric covariate enters as ``(value - centre) /
    scale``; a categorical one as one indicator per listed level against its ``reference``. The
    strata (stations) each have their own baseline hazard that never left them: the model has
    no shared baseline hazard and gives relative risks only (:meth:`linear_predictor`,
    :meth:`hazard_ratio`), not survival probabilities.
    """

    kind: Literal["CoxModel"] = "CoxModel"
    ties: Literal["Efron"] = "Efron"
    covariates: list[Covariate] = Field(min_length=1, max_length=MAX_COVARIATES)
    """The covariate encoding, copied from the CoxRound declaration the stations computed."""
    terms: list[Term] = Field(min_length=1, max_length=MAX_COVARIATES * 16)
    coefficients: list[Annotated[float, Field(allow_inf_nan=False)]]
    """Log hazard ratios per unit of each term."""
    standard_errors: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]]
    """From the inverse of the summed Hessian (the observed information) at the coefficients."""
    strata: list[CoxStratum] = Field(default_factory=list, max_length=256)
    """The stations the model was fitted over, one stratum each."""

    @model_validator(mode="after")
    def _terms_fit_the_covariates(self) -> "CoxModel":
        expected = [name for covariate in self.covariates for name in covariate.column_names()]
        if self.terms != expected:
            raise ValueError("terms must be the covariates' columns, in order")
        if not len(self.terms) == len(self.coefficients) == len(self.standard_errors):
            raise ValueError("terms, coefficients and standardErrors must have the same length")
        return self

    def encode(self, record: Mapping[str, RecordValue]) -> list[float]:
        """The record's value of each term, encoded as the stations encoded their patients."""
        columns: list[float] = []
        for covariate in self.covariates:
            columns.extend(_encode(covariate, record.get(covariate.variable)))
        return columns

    def linear_predictor(self, record: Mapping[str, RecordValue]) -> float:
        """Σ coefficient × term for one patient record (0 for the reference patient)."""
        return math.fsum(b * x for b, x in zip(self.coefficients, self.encode(record), strict=True))

    def hazard_ratio(
        self, record: Mapping[str, RecordValue], other: Mapping[str, RecordValue]
    ) -> float:
        """How many times ``record``'s hazard is ``other``'s, at any time, in any stratum."""
        return math.exp(self.linear_predictor(record) - self.linear_predictor(other))

    def hazard_ratios(self, z: float = Z_95) -> list[HazardRatio]:
        """exp(β) per term with the Wald interval exp(β ± z·SE) (95 % by default)."""
        return [
            HazardRatio(
                term=term,
                hazard_ratio=math.exp(beta),
                lower=math.exp(beta - z * error),
                upper=math.exp(beta + z * error),
            )
            for term, beta, error in zip(
                self.terms, self.coefficients, self.standard_errors, strict=True
            )
        ]


def _encode(covariate: Covariate, value: RecordValue) -> list[float]:
    name = covariate.variable
    if covariate.levels is None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordError(f"{name}: a number is needed")
        if not math.isfinite(value):
            raise RecordError(f"{name}: a finite number is needed")
        return [(float(value) - covariate.centre) / covariate.scale]
    known = [*covariate.reference_values(), *covariate.levels]
    if value is None and MISSING_LEVEL in known:
        value = MISSING_LEVEL
    if not isinstance(value, str) or value not in known:
        shown = "no value" if value is None else repr(value)
        raise RecordError(
            f"{name}: unknown level {shown} (the model knows {', '.join(map(str, known))})"
        )
    return [1.0 if value == level else 0.0 for level in covariate.levels]
