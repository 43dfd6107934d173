"""Model rounds: one station's log-likelihood, gradient and Hessian at given coefficients.

A coordinator fits a model over stations by Newton's method: each round it sends coefficients
β, every station answers with the statistics of its own patients at β, and the coordinator sums
them and steps β ← β − H⁻¹g. Summed over stations, the GLM statistics are those of the pooled
data, and the Cox statistics (each station its own stratum) those of the model stratified by
station, so the federated fit equals the pooled (stratified) fit.

:func:`glm_statistics` and :func:`cox_statistics` are the pure maths (numpy only; a
coordinator may reuse them). :func:`glm_round` and :func:`cox_round` are the aggregates a Train
declares: they read the design from the answer, check the coefficients and the disclosure
rules, and release a :class:`~pht_contract.aggregates.ModelRound`. A Cox round also releases
the station's Harrell C-index at the coefficients (:func:`harrell_concordance`), a rank
statistic that tells how well the model orders the station's patients; unlike the statistics
below it is rounded to the policy's significant digits, as no step is computed from it.

The statistics leave at full double precision, not rounded to the policy's significant digits:
a Newton step divides by the Hessian, and rounded statistics would keep the federated fit from
matching the pooled one (to 1e-6). What one round can tell about a patient is limited instead by
the rules: the coefficients are bounded (a large coefficient could make one patient dominate
every sum), and the round is withheld for small cohorts, few residual degrees of freedom, few
deaths per term, small outcome classes, small categorical levels, few patients at two levels
of different covariates and few patients of either outcome class at a level.
"""

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from pht_contract.aggregates import AggregateResult, AggregateSpec, AggregateStatus, ModelRound
from pht_contract.policies import DisclosurePolicy
from pht_station_api.aggregates.answers import Answer
from pht_station_api.aggregates.design import Design, UnknownVariable, cox_design, glm_design
from pht_station_api.disclosure.numbers import round_significant

FloatArray = NDArray[np.float64]
Family = Literal["Binomial", "Gaussian", "Poisson"]


@dataclass(frozen=True)
class RoundStatistics:
    """The log-likelihood, its gradient and its Hessian (negative semi-definite) at β."""

    log_likelihood: float
    gradient: FloatArray
    hessian: FloatArray

    def is_finite(self) -> bool:
        return bool(
            math.isfinite(self.log_likelihood)
            and np.all(np.isfinite(self.gradient))
            and np.all(np.isfinite(self.hessian))
        )


def glm_statistics(
    x: FloatArray, y: FloatArray, beta: FloatArray, family: Family
) -> RoundStatistics:
    """A GLM's log-likelihood, gradient and Hessian at ``beta``, with the canonical link.

    Binomial (logit): Σ yη − log(1 + eᵑ), computed with log-sum-exp so no term overflows.
    Poisson (log): Σ yη − eᵑ − log y!. Gaussian (identity): −½ Σ (y − η)², the log-likelihood
    with unit variance up to the constant −n/2·log 2π; the variance does not change the
    estimate, and a coordinator estimates it from the residuals (the Hessian is −XᵀX).
    Coefficients too large for the covariates' values give non-finite statistics (see
    :meth:`RoundStatistics.is_finite`) rather than an error.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _glm_statistics(x, y, beta, family)


def _glm_statistics(
    x: FloatArray, y: FloatArray, beta: FloatArray, family: Family
) -> RoundStatistics:
    eta = x @ beta
    if family == "Binomial":
        softplus = np.logaddexp(0.0, eta)
        log_likelihood = float(np.sum(y * eta - softplus))
        mean = np.exp(eta - softplus)
        weight = np.exp(eta - 2.0 * softplus)
    elif family == "Poisson":
        mean = np.exp(eta)
        log_factorial = np.array([math.lgamma(value + 1.0) for value in y], dtype=np.float64)
        log_likelihood = float(np.sum(y * eta - mean - log_factorial))
        weight = mean
    else:
        mean = eta
        log_likelihood = float(-0.5 * np.sum((y - eta) ** 2))
        weight = np.ones_like(eta)
    gradient = x.T @ (y - mean)
    hessian = -(x.T * weight) @ x
    return RoundStatistics(log_likelihood, gradient, hessian)


def cox_statistics(
    time: FloatArray, event: NDArray[np.bool_], x: FloatArray, beta: FloatArray
) -> RoundStatistics:
    """The Cox log partial likelihood with Efron's ties, its gradient and Hessian at ``beta``.

    One stratum (a station's patients). At each event time with d deaths D among the risk set
    R, Efron's approximation removes the share l/d of the deaths' hazard for l = 0 … d−1:
    ℓ = Σ_D η − Σ_l log(Σ_R eᵑ − l/d Σ_D eᵑ). Columns are centred first (which changes none of
    the three), and the sums over the growing risk set are kept relative to its largest η, so
    no exponential overflows and the denominators never vanish.
    """
    n, p = x.shape
    order = np.argsort(-time, kind="stable")
    times, deaths = time[order], event[order]
    xs = x[order] - (x.mean(axis=0) if n else 0.0)
    eta = xs @ beta
    log_likelihood = 0.0
    gradient = np.zeros(p)
    hessian = np.zeros((p, p))
    shift = -math.inf
    s0, s1, s2 = 0.0, np.zeros(p), np.zeros((p, p))
    starts = [0, *(np.flatnonzero(np.diff(times)) + 1).tolist(), n]
    for start, stop in itertools.pairwise(starts):
        if start == stop:
            continue
        group_eta, group_x = eta[start:stop], xs[start:stop]
        largest = float(group_eta.max())
        if largest > shift:
            rescale = math.exp(shift - largest)
            s0, s1, s2, shift = s0 * rescale, s1 * rescale, s2 * rescale, largest
        risk = np.exp(group_eta - shift)
        s0 += float(risk.sum())
        s1 = s1 + group_x.T @ risk
        s2 = s2 + (group_x.T * risk) @ group_x
        dead = deaths[start:stop]
        count = int(dead.sum())
        if count == 0:
            continue
        dead_risk, dead_x = risk[dead], group_x[dead]
        d0 = float(dead_risk.sum())
        d1 = dead_x.T @ dead_risk
        d2 = (dead_x.T * dead_risk) @ dead_x
        log_likelihood += float(group_eta[dead].sum())
        gradient += dead_x.sum(axis=0)
        for tied in range(count):
            share = tied / count
            a0 = s0 - share * d0
            mean = (s1 - share * d1) / a0
            log_likelihood -= math.log(a0) + shift
            gradient -= mean
            hessian -= (s2 - share * d2) / a0 - np.outer(mean, mean)
    return RoundStatistics(log_likelihood, gradient, hessian)


def harrell_concordance(
    time: FloatArray, event: NDArray[np.bool_], risk: FloatArray
) -> float | None:
    """Harrell's C: the share of comparable pairs the risk orders correctly; None without any.

    A pair is comparable when one patient died and the other is known to have lived longer:
    followed up longer, or censored at the same time as the death (two deaths at the same time
    tell nothing about their order). It is concordant when the one who died has the higher
    risk, and counts 1/2 when both risks are equal. Deaths are taken from the latest time back,
    each compared with a sorted pool of the patients who outlived it, in O(n log n).
    """
    order = np.argsort(-time, kind="stable")
    times, deaths, risks = time[order], event[order], risk[order]
    outlived: list[float] = []
    pairs = concordant = ties = 0
    starts = [0, *(np.flatnonzero(np.diff(times)) + 1).tolist(), times.size]
    for start, stop in itertools.pairwise(starts):
        group_deaths, group_risks = deaths[start:stop], risks[start:stop]
        for value in group_risks[~group_deaths].tolist():
            bisect.insort(outlived, value)
        for value in group_risks[group_deaths].tolist():
            lower = bisect.bisect_left(outlived, value)
            upper = bisect.bisect_right(outlived, value)
            pairs += len(outlived)
            concordant += lower
            ties += upper - lower
        for value in group_risks[group_deaths].tolist():
            bisect.insort(outlived, value)
    if pairs == 0:
        return None
    return (concordant + ties / 2) / pairs


class _Refused(Exception):
    def __init__(self, status: AggregateStatus, rule: str) -> None:
        super().__init__(rule)
        self.status = status
        self.rule = rule


def _coefficients(
    spec: AggregateSpec, parameters: Mapping[str, object], policy: DisclosurePolicy
) -> FloatArray:
    """The coordinator's coefficients in term order (missing terms 0), within the bound."""
    assert spec.coefficients is not None
    sent = parameters.get(spec.coefficients.parameter)
    terms = spec.terms()
    if not isinstance(sent, Mapping) or any(name not in terms for name in sent):
        raise _Refused(AggregateStatus.FAILED, "CoefficientsMissing")
    values: list[float] = []
    for term in terms:
        value = sent.get(term, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused(AggregateStatus.FAILED, "CoefficientsMissing")
        if not math.isfinite(value):
            raise _Refused(AggregateStatus.FAILED, "CoefficientsMissing")
        values.append(float(value))
    bound = min(spec.coefficients.max_abs, policy.aggregates.max_abs_coefficient)
    if any(abs(value) > bound for value in values):
        raise _Refused(AggregateStatus.WITHHELD, "CoefficientsOutOfBounds")
    return np.array(values, dtype=np.float64)


def _withhold_if(condition: bool, rule: str) -> None:
    if condition:
        raise _Refused(AggregateStatus.WITHHELD, rule)


def _small_cell(count: int, policy: DisclosurePolicy) -> bool:
    """Fewer than k patients, or none while the policy counts an empty cell as disclosive."""
    if count == 0:
        return policy.aggregates.zeros_are_disclosive
    return count < policy.min_cell_count


def _check_design(design: Design, policy: DisclosurePolicy) -> None:
    """The rules every model round meets, whatever the model."""
    rules = policy.aggregates
    _withhold_if(design.patients == 0, "NoPatients")
    _withhold_if(design.patients < policy.min_cohort, "MinCohort")
    _withhold_if(design.patients - len(design.terms) < rules.min_residual_dof, "ResidualDof")
    # An indicator column with few patients isolates them (the reference level too: with an
    # intercept its column is the intercept less the indicators).
    for level in design.levels:
        _withhold_if(_small_cell(level.patients, policy), "MinCellCount")
    # The Hessian at β = 0 holds the patients at two levels of different covariates (XᵀX), and
    # coefficients on both levels weight those patients apart from the rest: a few of them
    # would be counted and then, a round later, their values solved for.
    for first, second in itertools.combinations(design.levels, 2):
        if first.covariate != second.covariate:
            both = int(np.count_nonzero(first.members & second.members))
            _withhold_if(_small_cell(both, policy), "MinCellCount")


def _classes_large_enough(positives: int, total: int, policy: DisclosurePolicy) -> None:
    # Fewer than k patients in either class (or none at all) tells what those patients had.
    _withhold_if(min(positives, total - positives) < policy.min_cell_count, "MinCellCount")


def _level_classes_large_enough(
    design: Design, positive: NDArray[np.bool_], policy: DisclosurePolicy
) -> None:
    # A round tells each level's outcomes (the Binomial gradient at β = 0 holds its positives
    # outright): a level with few patients in either class tells what those patients had.
    for level in design.levels:
        positives = int(np.count_nonzero(level.members & positive))
        small = _small_cell(positives, policy) or _small_cell(level.patients - positives, policy)
        _withhold_if(small, "MinCellCount")


def _result(
    spec: AggregateSpec,
    status: AggregateStatus,
    rule: str | None = None,
    model: ModelRound | None = None,
    left_out: int | None = None,
) -> AggregateResult:
    return AggregateResult(
        name=spec.name,
        kind=spec.kind,
        query=spec.query,
        status=status,
        rule=rule,
        model=model,
        left_out=left_out,
    )


def _released(
    spec: AggregateSpec,
    design: Design,
    beta: FloatArray,
    statistics: RoundStatistics,
    events: int | None,
    policy: DisclosurePolicy,
    concordance: float | None = None,
) -> AggregateResult:
    if not statistics.is_finite():
        # The coefficients are within the bound yet too large for these covariates' values.
        return _result(spec, AggregateStatus.WITHHELD, "CoefficientsOutOfBounds")
    model = ModelRound(
        terms=list(design.terms),
        coefficients=beta.tolist(),
        n=design.patients,
        events=events,
        log_likelihood=statistics.log_likelihood,
        gradient=statistics.gradient.tolist(),
        hessian=statistics.hessian.tolist(),
        concordance=(
            None
            if concordance is None
            else round_significant(concordance, policy.significant_digits)
        ),
    )
    left_out = design.left_out if design.left_out >= policy.min_cell_count else None
    return _result(spec, AggregateStatus.RELEASED, model=model, left_out=left_out)


def glm_round(
    spec: AggregateSpec,
    answer: Answer,
    parameters: Mapping[str, object],
    policy: DisclosurePolicy,
) -> AggregateResult:
    """The GlmRound aggregate: statistics at full double precision (see the module's notes)."""
    assert spec.family is not None
    try:
        design = glm_design(spec, answer)
        beta = _coefficients(spec, parameters, policy)
        _check_design(design, policy)
        if spec.family == "Binomial":
            _classes_large_enough(int(design.response.sum()), design.patients, policy)
            _level_classes_large_enough(design, design.response == 1.0, policy)
    except UnknownVariable:
        return _result(spec, AggregateStatus.FAILED, "UnknownVariable")
    except _Refused as refused:
        return _result(spec, refused.status, refused.rule)
    statistics = glm_statistics(design.x, design.response, beta, spec.family)
    return _released(spec, design, beta, statistics, None, policy)


def cox_round(
    spec: AggregateSpec,
    answer: Answer,
    parameters: Mapping[str, object],
    policy: DisclosurePolicy,
) -> AggregateResult:
    """The CoxRound aggregate: statistics at full double precision (see the module's notes)."""
    try:
        design = cox_design(spec, answer)
        beta = _coefficients(spec, parameters, policy)
        _check_design(design, policy)
        deaths = int(design.event.sum())
        per_term = policy.aggregates.min_events_per_parameter
        _withhold_if(deaths < len(design.terms) * per_term, "EventsPerParameter")
        # n and the deaths are released: few survivors (or none) would be a small cell.
        _classes_large_enough(deaths, design.patients, policy)
        _level_classes_large_enough(design, design.event, policy)
    except UnknownVariable:
        return _result(spec, AggregateStatus.FAILED, "UnknownVariable")
    except _Refused as refused:
        return _result(spec, refused.status, refused.rule)
    statistics = cox_statistics(design.response, design.event, design.x, beta)
    concordance = harrell_concordance(design.response, design.event, design.x @ beta)
    return _released(spec, design, beta, statistics, deaths, policy, concordance)
