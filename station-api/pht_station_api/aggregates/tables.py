"""Count and Summary tables the station computes from an approved query's answer.

A **Count** table holds the patients per combination of ``by`` labels (no ``by``: one cell, the
total); a **Summary** table holds, per combination, the patients with a number for
``variable`` and the mean and sample standard deviation of those numbers. Every combination of
the listed labels is a row, empty groups included, so a zero is judged like any other cell.
There are no margins.

Disclosure (see :mod:`.rules`):

* A count cell below ``minCellCount`` is emptied, and so is a zero when zeros are disclosive.
  A reader sees both as ``MinCellCount``: the rule a cell names must not tell a zero from a
  small count.
* The table's ``cohortSize`` (the patients it counts) is a total: a reader subtracting the
  released counts learns the sum of the emptied ones. Released counts are emptied too
  (``Complementary``), the smallest that suffices first, until that sum leaves every emptied
  small count anywhere between zero (one, when zeros are released) and ``minCellCount - 1``
  for a reader who knows each complement holds at least ``minCellCount``
  (:func:`~.rules.complementary_cells`). When even emptying every count would not do, the
  table is withheld (``MinCellCount``).
* A group's mean and standard deviation are emptied when its numbers break the frequency,
  dominance or p-ratio rule; the standard deviation needs two numbers as well.
* A table counting fewer patients than ``minCohort`` (or than ``minCellCount``: its cohort size
  is a count too) is withheld (``MinCohort``); a table whose cells are all emptied is released
  as such.

Means and standard deviations are computed exactly from the doubles read (no overflow, no
cancellation) and leave rounded to ``significantDigits``; one that is no finite double even so
(numbers near the largest double) is emptied (``NotFinite``).
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Final

from pht_contract.aggregates import AggregateResult, AggregateSpec, AggregateStatus, SuppressedCell
from pht_contract.manifests import Cell, Column, ResultTable
from pht_contract.policies import AggregateRules, DisclosurePolicy
from pht_station_api.aggregates.answers import Answer, number
from pht_station_api.aggregates.groups import UNKNOWN_VARIABLE, Grouping, grouping
from pht_station_api.aggregates.rules import (
    MIN_CELL_COUNT,
    NO_VARIATION,
    ZERO_CELL,
    Bounds,
    as_integers,
    check_contributions,
    check_count,
    complementary_cells,
)
from pht_station_api.disclosure.numbers import round_significant

PATIENTS: Final = "patients"
MEAN: Final = "mean"
SD: Final = "sd"
MIN_COHORT: Final = "MinCohort"
NO_PATIENTS: Final = "NoPatients"
COMPLEMENTARY: Final = "Complementary"
NOT_FINITE: Final = "NotFinite"
#: A summarised variable with at most this many distinct values is judged like a category.
FEW_VALUES: Final = 3
RESIDUAL_DOF: Final = "ResidualDof"


def failed(spec: AggregateSpec, rule: str) -> AggregateResult:
    """Not computed: the declaration does not fit the answer (``rule`` says why)."""
    return AggregateResult(
        name=spec.name, kind=spec.kind, query=spec.query, status=AggregateStatus.FAILED, rule=rule
    )


def withheld(spec: AggregateSpec, rule: str) -> AggregateResult:
    """Computed, but nothing of it may leave (``rule`` says why)."""
    return AggregateResult(
        name=spec.name, kind=spec.kind, query=spec.query, status=AggregateStatus.WITHHELD, rule=rule
    )


def released(
    spec: AggregateSpec,
    table: ResultTable,
    suppressed: Sequence[SuppressedCell],
    left_out: int,
    policy: DisclosurePolicy,
) -> AggregateResult:
    """The table as it leaves, its emptied cells, and the left-out patients when not few."""
    ordered = sorted(suppressed, key=lambda cell: cell.row)
    return AggregateResult(
        name=spec.name,
        kind=spec.kind,
        query=spec.query,
        status=AggregateStatus.RELEASED,
        rule=ordered[0].rule if ordered else None,
        table=table,
        suppressed=ordered,
        left_out=left_out if left_out >= policy.min_cell_count else None,
    )


def too_few(cohort: int, policy: DisclosurePolicy) -> bool:
    """Whether a table of ``cohort`` patients is withheld (``MinCohort``)."""
    return cohort < max(policy.min_cohort, policy.min_cell_count)


def as_reported(rule: str) -> str:
    """The rule a reader sees: a zero, a small count and a group without variation are all
    ``MinCellCount`` (a rule named after a zero or after identical values would tell them)."""
    return MIN_CELL_COUNT if rule in (ZERO_CELL, NO_VARIATION) else rule


def protect(counts: Sequence[int], emptied: dict[int, str], policy: DisclosurePolicy) -> bool:
    """Empty further counts (``Complementary``) so that no emptied small count is narrowed down.

    False when that is not possible: the table is withheld.
    """
    k, rules = policy.min_cell_count, policy.aggregates
    small_floor = 0 if rules.zeros_are_disclosive else 1
    bounds: dict[int, Bounds] = {
        row: (k, None) if rule == COMPLEMENTARY else (small_floor, k - 1)
        for row, rule in emptied.items()
    }
    extra = complementary_cells(counts, bounds, k, rules, released_floor=k)
    if extra is None:
        return False
    emptied.update(dict.fromkeys(extra, COMPLEMENTARY))
    return True


def mean_and_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """The exact mean and sample standard deviation (``None`` for one value), as doubles.

    A double that would not be finite comes back as infinity; the caller empties it.
    """
    numerators, denominator = as_integers(values)
    n = len(numerators)
    total = sum(numerators)
    mean = float(Fraction(total, n * denominator))
    if n < 2:
        return mean, None
    # Sum of squared deviations = (n·Σa² − (Σa)²) / (n·D²), all in integers.
    spread = n * sum(a * a for a in numerators) - total * total
    with localcontext() as context:
        context.prec = 40
        variance = Decimal(spread) / (Decimal(n) * Decimal(n - 1) * Decimal(denominator) ** 2)
        sd = float(variance.sqrt())
    return mean, sd


def _small_value_count(
    group: Sequence[float], distinct: set[float], k: int, rules: AggregateRules
) -> bool:
    """Whether some value of a few-valued variable is held by fewer than ``k`` of the group
    (none at all counts as small while zeros are disclosive)."""
    tally = Counter(group)
    if any(count < k for count in tally.values()):
        return True
    return rules.zeros_are_disclosive and len(tally) < len(distinct)


def _statistic(value: float | None, policy: DisclosurePolicy) -> float | None:
    """``value`` rounded for release, or ``None`` when it is no finite double."""
    if value is None:
        return None
    rounded = round_significant(value, policy.significant_digits)
    return rounded if abs(rounded) < float("inf") else None


def _groups_of(
    found: Grouping, answer: Answer, variable: str | None
) -> tuple[list[tuple[str, ...]], list[list[float]], int]:
    """Each combination of labels, the values of its patients, and the patients left out.

    Without ``variable`` every grouped patient contributes ``0.0`` (only the count is used).
    """
    combinations = found.combinations()
    row_of = {labels: row for row, labels in enumerate(combinations)}
    values: list[list[float]] = [[] for _ in combinations]
    left_out = 0
    for record in answer.patients:
        labels = found.group_of(record)
        value = 0.0 if variable is None else number(record.get(variable))
        if labels is None or value is None:
            left_out += 1
            continue
        values[row_of[labels]].append(value)
    return combinations, values, left_out


def _group_columns(found: Grouping) -> list[Column]:
    return [Column(name=variable, role="Group") for variable in found.variables]


def count_table(
    spec: AggregateSpec,
    answer: Answer,
    parameters: Mapping[str, object],
    policy: DisclosurePolicy,
) -> AggregateResult:
    """Patients per combination of ``by`` labels, with the disclosure rules applied."""
    del parameters  # a Count has no parameters
    found = grouping(spec.by, answer, policy, (PATIENTS,))
    if isinstance(found, str):
        return failed(spec, found)
    if not answer.patients:
        return withheld(spec, NO_PATIENTS)
    combinations, values, left_out = _groups_of(found, answer, None)
    counts = [len(group) for group in values]
    if too_few(sum(counts), policy):
        return withheld(spec, MIN_COHORT)
    k, rules = policy.min_cell_count, policy.aggregates
    emptied = {
        row: as_reported(rule)
        for row, count in enumerate(counts)
        if (rule := check_count(count, k, rules)) is not None
    }
    if not protect(counts, emptied, policy):
        return withheld(spec, MIN_CELL_COUNT)
    rows: list[list[Cell]] = [
        [*labels, None if row in emptied else counts[row]]
        for row, labels in enumerate(combinations)
    ]
    table = ResultTable(
        name=spec.name,
        columns=[*_group_columns(found), Column(name=PATIENTS, role="Count")],
        rows=rows,
        cohort_size=sum(counts),
    )
    suppressed = [
        SuppressedCell(row=row, column=PATIENTS, rule=rule) for row, rule in emptied.items()
    ]
    return released(spec, table, suppressed, left_out, policy)


def summary_table(
    spec: AggregateSpec,
    answer: Answer,
    parameters: Mapping[str, object],
    policy: DisclosurePolicy,
) -> AggregateResult:
    """Patients, mean and sample standard deviation of ``variable`` per combination of labels.

    Patients without a number for ``variable`` are left out of this aggregate.
    """
    del parameters  # a Summary has no parameters
    found = grouping(spec.by, answer, policy, (PATIENTS, MEAN, SD))
    if isinstance(found, str):
        return failed(spec, found)
    variable = spec.variable
    if variable is None or variable not in answer.variables:
        return failed(spec, UNKNOWN_VARIABLE)
    if not answer.patients:
        return withheld(spec, NO_PATIENTS)
    combinations, values, left_out = _groups_of(found, answer, variable)
    counts = [len(group) for group in values]
    if too_few(sum(counts), policy):
        return withheld(spec, MIN_COHORT)
    k, rules = policy.min_cell_count, policy.aggregates
    emptied_counts = {
        row: as_reported(rule)
        for row, count in enumerate(counts)
        if (rule := check_count(count, k, rules)) is not None
    }
    if not protect(counts, emptied_counts, policy):
        return withheld(spec, MIN_CELL_COUNT)
    rows: list[list[Cell]] = []
    suppressed: list[SuppressedCell] = []
    # A variable of few values is a category in disguise: n, mean and sd of a 0/1 or 0/1/2
    # variable give back how many patients of a group have each value.
    distinct = {value for group in values for value in group}
    categorical = len(distinct) <= FEW_VALUES
    for row, (labels, group) in enumerate(zip(combinations, values, strict=True)):
        count_rule = emptied_counts.get(row)
        if count_rule is not None:
            suppressed.append(SuppressedCell(row=row, column=PATIENTS, rule=count_rule))
        mean: float | None = None
        sd: float | None = None
        # A group whose count is emptied keeps its statistics hidden too: they rest on it.
        rule = count_rule or check_contributions(group, k, rules)
        if rule is None and categorical and _small_value_count(group, distinct, k, rules):
            rule = MIN_CELL_COUNT
        if rule is None:
            exact_mean, exact_sd = mean_and_sd(group)
            mean, sd = _statistic(exact_mean, policy), _statistic(exact_sd, policy)
            mean_rule = None if mean is not None else NOT_FINITE
            sd_rule = None if sd is not None else MIN_CELL_COUNT if len(group) < 2 else NOT_FINITE
            if sd_rule is None and len(group) - 1 < rules.min_residual_dof:
                # A spread needs degrees of freedom, as ACRO judges it: n − 1 ≥ minResidualDof.
                sd, sd_rule = None, RESIDUAL_DOF
        else:
            mean_rule = sd_rule = as_reported(rule)
        if mean_rule is not None:
            suppressed.append(SuppressedCell(row=row, column=MEAN, rule=mean_rule))
        if sd_rule is not None:
            suppressed.append(SuppressedCell(row=row, column=SD, rule=sd_rule))
        rows.append([*labels, None if count_rule else counts[row], mean, sd])
    table = ResultTable(
        name=spec.name,
        columns=[
            *_group_columns(found),
            Column(name=PATIENTS, role="Count"),
            Column(name=MEAN, role="Statistic"),
            Column(name=SD, role="Statistic"),
        ],
        rows=rows,
        cohort_size=sum(counts),
    )
    return released(spec, table, suppressed, left_out, policy)
