"""Kaplan–Meier tables the station computes on the time grid fixed at approval.

Per combination of ``by`` labels (without ``by``: one curve of every patient read), one row per
grid point: the point (``days``), the patients still followed after that day (``at_risk``:
neither dead nor censored on or before it), the patients who left the risk set — deaths and
censorings together — since the previous *released* point (``left``), and the Kaplan–Meier
estimate of survival at the point with its 95 % confidence interval (``lower``, ``upper``).

The interval is the log(−log) ("exponential Greenwood") interval, lifelines' and ACRO's
(statsmodels') default: with ``V`` Greenwood's variance sum Σ d / (n (n − d)) over the death
times up to the point, the bounds are ``exp(−exp(log(−log S) ∓ z √V / log S))``, ``z`` the
97.5 % normal quantile; it stays within [0, 1]. Where the estimate is 1 the interval is [1, 1].

Disclosure applies to the increments. Walking the grid, a point is released only when its
``at_risk`` is at least ``minCellCount`` and the drop in numbers at risk since the last released
point — since the start, the group's size — is at least ``minCellCount`` too; otherwise its
numbers are emptied (``SurvivalDrop``, its ``days`` kept) and the drop keeps accumulating into
the next point. So no released number at risk, nor the difference of two released ones,
stands for fewer than ``minCellCount`` patients, and separate counts of deaths and censorings
are never released. ``at_risk`` counts the patients beyond the point, so the drop between two
released points is exactly the patients whose deaths and censorings the change in survival
between them reflects. A group smaller than ``minCohort`` is emptied entirely (``MinCohort``).

A released curve tells its group's size (``at_risk + left`` at its first released point), and
the table's ``cohortSize`` is the sum of all groups: released curves are emptied too
(``Complementary``), the smallest that suffices first, until the groups without a released
point leave each small group's size (zero included, when zeros are disclosive) anywhere up to
``minCellCount - 1`` for a reader (:func:`~.rules.complementary_cells`); when that cannot be
done the table is withheld (``MinCellCount``).

ACRO (``surv_func`` with suppression) instead coarsens every event time of the curve, always
shows the first, and recomputes survival from the accumulated deaths; here the grid is fixed
at approval and the estimate at a released point is the exact Kaplan–Meier estimate, rounded
to ``significantDigits``.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

from pht_contract.aggregates import AggregateResult, AggregateSpec, SuppressedCell
from pht_contract.manifests import Cell, Column, ResultTable
from pht_contract.policies import DisclosurePolicy
from pht_station_api.aggregates.answers import Answer, died, number
from pht_station_api.aggregates.groups import ALL_LABEL, UNKNOWN_VARIABLE, grouping
from pht_station_api.aggregates.rules import MIN_CELL_COUNT, Bounds, complementary_cells
from pht_station_api.aggregates.tables import (
    COMPLEMENTARY,
    MIN_COHORT,
    NO_PATIENTS,
    failed,
    released,
    too_few,
    withheld,
)
from pht_station_api.disclosure.numbers import round_significant

DAYS: Final = "days"
AT_RISK: Final = "at_risk"
LEFT: Final = "left"
SURVIVAL: Final = "survival"
LOWER: Final = "lower"
UPPER: Final = "upper"
SURVIVAL_DROP: Final = "SurvivalDrop"
#: The two-sided 95 % normal quantile.
Z_95: Final = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class CurvePoint:
    """The Kaplan–Meier estimate at one grid point, before any rule."""

    days: int
    at_risk: int
    survival: float
    lower: float
    upper: float


def log_log_interval(survival: float, greenwood: float) -> tuple[float, float]:
    """The 95 % log(−log) confidence interval of a survival estimate with Greenwood sum."""
    if survival >= 1.0:
        return 1.0, 1.0
    if survival <= 0.0 or not math.isfinite(greenwood):
        return 0.0, 0.0
    log_s = math.log(survival)
    width = Z_95 * math.sqrt(greenwood) / log_s
    centre = math.log(-log_s)
    return math.exp(-math.exp(centre - width)), math.exp(-math.exp(centre + width))


def kaplan_meier(
    follow_up: Sequence[tuple[float, bool]], points: Sequence[int]
) -> list[CurvePoint]:
    """The estimate at each of ``points`` from (days, died) pairs, one per patient."""
    ordered = sorted(follow_up)
    remaining = len(ordered)
    survival, greenwood = 1.0, 0.0
    curve: list[CurvePoint] = []
    index = 0
    for point in points:
        # Take in every death and censoring on or before this point, one time at a time.
        while index < len(ordered) and ordered[index][0] <= point:
            time = ordered[index][0]
            deaths = leaving = 0
            while index < len(ordered) and ordered[index][0] == time:
                deaths += ordered[index][1]
                leaving += 1
                index += 1
            if deaths:
                survival *= 1.0 - deaths / remaining
                greenwood = (
                    greenwood + deaths / (remaining * (remaining - deaths))
                    if remaining > deaths
                    else math.inf
                )
            remaining -= leaving
        lower, upper = log_log_interval(survival, greenwood)
        curve.append(CurvePoint(point, remaining, survival, lower, upper))
    return curve


def released_points(curve: Sequence[CurvePoint], size: int, k: int) -> list[int]:
    """The indices of the points that may be released, walking the grid from ``size``."""
    chosen: list[int] = []
    last = size
    for index, point in enumerate(curve):
        if point.at_risk >= k and last - point.at_risk >= k:
            chosen.append(index)
            last = point.at_risk
    return chosen


def overall_rules(
    curves: Sequence[Sequence[CurvePoint]], sizes: Sequence[int], shown: Sequence[set[int]], k: int
) -> list[str | None]:
    """Per grid point, the rule that empties the curve of every patient there (None: released).

    Its number at risk is the sum of the groups', so beside them it gives back the sum over the
    groups that are not released at that point. So a point is released only where every group
    with a released point is released too, and where the groups without any released point —
    taken together as one group whose size a reader knows from the table's cohort size — pass
    the same rule as any curve: at least ``k`` at risk, and a drop of at least ``k`` since the
    previous released point of the overall curve (``Complementary`` otherwise). Its own numbers
    must pass that rule as well (``SurvivalDrop`` otherwise).
    """
    partial = [group for group, chosen in enumerate(shown) if chosen]
    hidden = [group for group, chosen in enumerate(shown) if not chosen]
    last_total, last_hidden = sum(sizes), sum(sizes[group] for group in hidden)
    rules: list[str | None] = []
    for index in range(len(curves[0]) if curves else 0):
        at_risk = sum(curve[index].at_risk for curve in curves)
        hidden_at_risk = sum(curves[group][index].at_risk for group in hidden)
        if at_risk < k or last_total - at_risk < k:
            rules.append(SURVIVAL_DROP)
        elif any(index not in shown[group] for group in partial) or (
            hidden and (hidden_at_risk < k or last_hidden - hidden_at_risk < k)
        ):
            rules.append(COMPLEMENTARY)
        else:
            rules.append(None)
            last_total, last_hidden = at_risk, hidden_at_risk
    return rules


def _round(value: float, policy: DisclosurePolicy) -> float:
    return round_significant(value, policy.significant_digits)


def kaplan_meier_table(
    spec: AggregateSpec,
    answer: Answer,
    parameters: Mapping[str, object],
    policy: DisclosurePolicy,
) -> AggregateResult:
    """Survival on ``spec.grid`` per combination of ``by`` labels, with the rules applied."""
    del parameters  # a KaplanMeier has no parameters
    columns, grid = spec.survival, spec.grid
    if columns is None or grid is None:
        return failed(spec, UNKNOWN_VARIABLE)
    own_columns = (DAYS, AT_RISK, LEFT, SURVIVAL, LOWER, UPPER)
    found = grouping(spec.by, answer, policy, own_columns, rows_per_group=len(grid.points()))
    if isinstance(found, str):
        return failed(spec, found)
    if columns.time not in answer.variables or columns.event not in answer.variables:
        return failed(spec, UNKNOWN_VARIABLE)
    if not answer.patients:
        return withheld(spec, NO_PATIENTS)
    combinations = found.combinations()
    row_of = {labels: row for row, labels in enumerate(combinations)}
    groups: list[list[tuple[float, bool]]] = [[] for _ in combinations]
    left_out = 0
    for record in answer.patients:
        labels = found.group_of(record)
        days = number(record.get(columns.time))
        death = died(record.get(columns.event))
        if labels is None or days is None or days < 0 or death is None:
            left_out += 1
            continue
        groups[row_of[labels]].append((days, death))
    sizes = [len(group) for group in groups]
    if too_few(sum(sizes), policy):
        return withheld(spec, MIN_COHORT)

    k, points = policy.min_cell_count, grid.points()
    curves = [kaplan_meier(group, points) for group in groups]
    shown: list[set[int]] = []
    hidden: dict[int, str] = {}
    for group, (size, curve) in enumerate(zip(sizes, curves, strict=True)):
        chosen = set() if size < policy.min_cohort else set(released_points(curve, size, k))
        shown.append(chosen)
        if not chosen:
            hidden[group] = MIN_COHORT if size < policy.min_cohort else SURVIVAL_DROP
    # What a reader knows of a hidden group's size from its rule; a released curve was of a
    # group of at least 2k (k at risk and a drop of k) and minCohort patients.
    bounds: dict[int, Bounds] = {
        group: (0, policy.min_cohort - 1) if rule == MIN_COHORT else (policy.min_cohort, None)
        for group, rule in hidden.items()
    }
    extra = complementary_cells(
        sizes, bounds, k, policy.aggregates, released_floor=max(2 * k, policy.min_cohort)
    )
    if extra is None:
        return withheld(spec, MIN_CELL_COUNT)
    for group in extra:
        shown[group] = set()
        hidden[group] = COMPLEMENTARY

    labelled = list(zip(combinations, sizes, curves, strict=True))
    point_rules: dict[int, list[str | None]] = {}
    if spec.overall:
        # The margin: every patient of the groups, as one more curve labelled All.
        everyone = [patient for group in groups for patient in group]
        rules = overall_rules(curves, sizes, shown, k)
        point_rules[len(labelled)] = rules
        labels = (ALL_LABEL,) * len(found.variables)
        labelled.append((labels, len(everyone), kaplan_meier(everyone, points)))
        shown.append({index for index, rule in enumerate(rules) if rule is None})

    rows: list[list[Cell]] = []
    suppressed: list[SuppressedCell] = []
    for group, (labels, size, curve) in enumerate(labelled):
        last = size
        for index, point in enumerate(curve):
            if index in shown[group]:
                rows.append(
                    [
                        *labels,
                        point.days,
                        point.at_risk,
                        last - point.at_risk,
                        _round(point.survival, policy),
                        _round(point.lower, policy),
                        _round(point.upper, policy),
                    ]
                )
                last = point.at_risk
                continue
            rule = point_rules[group][index] if group in point_rules else None
            rule = rule or hidden.get(group, SURVIVAL_DROP)
            suppressed.append(SuppressedCell(row=len(rows), rule=rule))
            rows.append([*labels, point.days, None, None, None, None, None])
    table = ResultTable(
        name=spec.name,
        columns=[
            *(Column(name=variable, role="Group") for variable in found.variables),
            Column(name=DAYS, role="Group"),
            Column(name=AT_RISK, role="Count"),
            Column(name=LEFT, role="Count"),
            Column(name=SURVIVAL, role="Statistic"),
            Column(name=LOWER, role="Statistic"),
            Column(name=UPPER, role="Statistic"),
        ],
        rows=rows,
        cohort_size=sum(sizes),
    )
    return released(spec, table, suppressed, left_out, policy)
