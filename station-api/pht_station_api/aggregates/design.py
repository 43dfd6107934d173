"""The design of a model round: one row per patient, read from an approved query's answer.

Covariates become columns in the declared order: a numeric covariate is ``(value - centre) /
scale``; a categorical covariate adds one 0/1 indicator per listed level, all 0 for the
``reference`` level (labels as :func:`~pht_station_api.aggregates.answers.label` reads them; an
unbound value is the label ``missing`` when ``missing`` is the reference or a level). A GLM
adds an ``intercept`` column of ones first when declared, and reads its outcome as a number
(0/1 for Binomial, at least 0 for Poisson) or, with ``horizonOutcome``, as 1 for a patient
followed up to the horizon and 0 for one who died before it. A Cox round reads follow-up days
(at least 0) and vital status. A patient missing any value the round needs, or holding a value
it cannot use, is left out of the design and only counted.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from pht_contract.aggregates import AggregateSpec, Covariate, SurvivalColumns
from pht_station_api.aggregates.answers import Answer, Value, died, label, number

FloatArray = NDArray[np.float64]

MISSING_LABEL: Final = "missing"


class UnknownVariable(ValueError):
    """The declaration reads a variable the query's answer does not have (names no value)."""


@dataclass(frozen=True)
class Level:
    """The patients of the design at one level of a categorical covariate (or its reference)."""

    #: The covariate's position among the declared covariates.
    covariate: int
    #: ``variable[level]``, as the model's terms name it.
    name: str
    #: One entry per design row: True where the patient is at this level.
    members: NDArray[np.bool_]

    @property
    def patients(self) -> int:
        return int(np.count_nonzero(self.members))


@dataclass(frozen=True)
class Design:
    """The rows of a model round and what the disclosure rules need to know about them."""

    terms: tuple[str, ...]
    #: One row per patient kept, one column per term.
    x: FloatArray
    #: GLM: the outcome per patient; Cox: follow-up days per patient.
    response: FloatArray
    #: Cox: True where the patient died; GLM: empty.
    event: NDArray[np.bool_]
    #: Every level of each categorical covariate, its reference level first.
    levels: tuple[Level, ...]
    #: Patients of the answer left out because a needed value could not be read.
    left_out: int

    @property
    def patients(self) -> int:
        return int(self.x.shape[0])


def _require(answer: Answer, variables: list[str]) -> None:
    known = set(answer.variables)
    unknown = [name for name in variables if name not in known]
    if unknown:
        raise UnknownVariable(f"the query does not select {', '.join(sorted(set(unknown)))}")


def _covariate_columns(covariate: Covariate, value: Value) -> list[float] | None:
    if covariate.levels is None:
        read = number(value)
        return None if read is None else [(read - covariate.centre) / covariate.scale]
    assert covariate.reference is not None
    level = label(value)
    declared = {*covariate.levels, *covariate.reference_values()}
    if level is None and MISSING_LABEL in declared:
        level = MISSING_LABEL
    if level not in declared:
        return None
    return [1.0 if level == listed else 0.0 for listed in covariate.levels]


def _covariate_row(
    spec: AggregateSpec, record: Mapping[str, Value], intercept: bool
) -> list[float] | None:
    row: list[float] = [1.0] if intercept else []
    for covariate in spec.covariates:
        columns = _covariate_columns(covariate, record.get(covariate.variable))
        if columns is None:
            return None
        row.extend(columns)
    return row


def _levels(spec: AggregateSpec, terms: tuple[str, ...], x: FloatArray) -> list[Level]:
    """Each categorical covariate's levels, read from its indicator columns: the reference
    level holds the patients whose indicators are all 0."""
    levels: list[Level] = []
    for position, covariate in enumerate(spec.covariates):
        if covariate.levels is None or covariate.reference is None:
            continue
        names = covariate.column_names()
        first = terms.index(names[0])
        indicators = x[:, first : first + len(names)] == 1.0
        levels.append(Level(position, covariate.reference_name(), ~indicators.any(axis=1)))
        levels.extend(Level(position, name, indicators[:, i]) for i, name in enumerate(names))
    return levels


def _survival(columns: SurvivalColumns, record: Mapping[str, Value]) -> tuple[float, bool] | None:
    days = number(record.get(columns.time))
    dead = died(record.get(columns.event))
    if days is None or dead is None or days < 0:
        return None
    return days, dead


def _glm_outcome(spec: AggregateSpec, record: Mapping[str, Value]) -> float | None:
    if spec.horizon_outcome is not None:
        survival = _survival(spec.horizon_outcome.survival, record)
        if survival is None:
            return None
        days, dead = survival
        if days >= spec.horizon_outcome.horizon_days:
            return 1.0
        return 0.0 if dead else None
    assert spec.outcome is not None
    outcome = number(record.get(spec.outcome))
    if outcome is None:
        return None
    if spec.family == "Binomial" and outcome not in (0.0, 1.0):
        return None
    if spec.family == "Poisson" and outcome < 0:
        return None
    return outcome


def _build(
    spec: AggregateSpec,
    answer: Answer,
    kept: list[tuple[list[float], float, bool]],
    with_events: bool,
) -> Design:
    terms = tuple(spec.terms())
    x = np.array([row for row, *_ in kept], dtype=np.float64).reshape(len(kept), len(terms))
    return Design(
        terms=terms,
        x=x,
        response=np.array([response for _, response, _ in kept], dtype=np.float64),
        event=np.array([event for _, _, event in kept if with_events], dtype=np.bool_),
        levels=tuple(_levels(spec, terms, x)),
        left_out=len(answer.patients) - len(kept),
    )


def _covariate_variables(spec: AggregateSpec) -> list[str]:
    return [spec.patient, *(covariate.variable for covariate in spec.covariates)]


def glm_design(spec: AggregateSpec, answer: Answer) -> Design:
    """The GLM round's design: intercept and covariate columns, and the outcome."""
    needed = _covariate_variables(spec)
    if spec.horizon_outcome is not None:
        survival = spec.horizon_outcome.survival
        needed += [survival.time, survival.event]
    elif spec.outcome is not None:
        needed.append(spec.outcome)
    _require(answer, needed)
    kept: list[tuple[list[float], float, bool]] = []
    for record in answer.patients:
        row = _covariate_row(spec, record, intercept=spec.intercept)
        outcome = _glm_outcome(spec, record)
        if row is not None and outcome is not None:
            kept.append((row, outcome, False))
    return _build(spec, answer, kept, with_events=False)


def cox_design(spec: AggregateSpec, answer: Answer) -> Design:
    """The Cox round's design: covariate columns, follow-up days and vital status."""
    assert spec.survival is not None
    _require(answer, [*_covariate_variables(spec), spec.survival.time, spec.survival.event])
    kept: list[tuple[list[float], float, bool]] = []
    for record in answer.patients:
        row = _covariate_row(spec, record, intercept=False)
        survival = _survival(spec.survival, record)
        if row is not None and survival is not None:
            kept.append((row, survival[0], survival[1]))
    return _build(spec, answer, kept, with_events=True)
