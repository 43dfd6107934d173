"""Statistical disclosure control for declared tables and summary statistics.

* The cohort behind every table must reach ``minCohort``; the table's claimed cohort may not
  exceed what the audited queries saw (the algorithm's word is checked, not trusted).
* Every non-zero count below ``minCellCount`` is a small cell (DataSHIELD's ``nfilter.tab``):
  with ``Suppress`` the row's counts and statistics become empty (a statistic over two patients
  discloses as much as their count); with ``Block`` the result is blocked naming the rule and
  the table, never the cell.
* Row-level tables are blocked when the policy forbids them and otherwise held for a steward.

Suppression here is primary only: a margin total elsewhere in the result can still let a reader
recompute a suppressed cell, which is one reason a steward can hold and review any result.
"""

import math
from dataclasses import dataclass, field

from pht_contract.manifests import ResultTable, Statistic
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure.decisions import SUPPRESSED, Finding, Outcome, Rule


@dataclass
class TableReview:
    findings: list[Finding] = field(default_factory=list)
    tables: list[ResultTable] = field(default_factory=list)
    statistics: list[Statistic] = field(default_factory=list)
    suppressed_cells: int = 0


def _number(cell: object) -> float | None:
    if isinstance(cell, bool):
        return float(cell)
    if isinstance(cell, int | float):
        return float(cell)
    return None


def _small(value: float, policy: DisclosurePolicy) -> bool:
    return 0 < value < policy.min_cell_count


def _check_cohort(
    name: str, cohort: int, policy: DisclosurePolicy, audited: int | None, review: TableReview
) -> None:
    if cohort < policy.min_cohort:
        review.findings.append(Finding(Rule.MIN_COHORT, Outcome.BLOCKED, name))
    if audited is not None and cohort > audited:
        review.findings.append(Finding(Rule.COHORT_SIZE_MISMATCH, Outcome.BLOCKED, name))


def review_table(
    table: ResultTable, policy: DisclosurePolicy, audited: int | None, review: TableReview
) -> None:
    if table.kind == "RowLevel":
        effect = Outcome.BLOCKED if policy.forbid_row_level else Outcome.HELD
        rule = Rule.ROW_LEVEL_FORBIDDEN if policy.forbid_row_level else Rule.ROW_LEVEL_REVIEW
        review.findings.append(Finding(rule, effect, table.name))
    _check_cohort(table.name, table.cohort_size, policy, audited, review)
    counts = table.count_columns()
    hidden = [i for i, c in enumerate(table.columns) if c.role != "Group"]
    rows: list[list[int | float | str | None]] = []
    small_rows = invalid = too_large = 0
    for row in table.rows:
        values = [_number(row[i]) for i in counts]
        if any(x is not None and (not math.isfinite(x) or x < 0) for x in values):
            invalid += 1
        if any(x is not None and math.isfinite(x) and x > table.cohort_size for x in values):
            too_large += 1
        if any(x is not None and math.isfinite(x) and _small(x, policy) for x in values):
            small_rows += 1
            if policy.small_cell_action == "Suppress":
                suppressed = list(row)
                review.suppressed_cells += sum(1 for i in hidden if row[i] is not None)
                for i in hidden:
                    suppressed[i] = None
                rows.append(suppressed)
                continue
        rows.append(list(row))
    if invalid:
        review.findings.append(Finding(Rule.INVALID_COUNT, Outcome.BLOCKED, table.name))
    if too_large:
        review.findings.append(Finding(Rule.COHORT_SIZE_MISMATCH, Outcome.BLOCKED, table.name))
    if small_rows:
        small: Outcome | str = (
            SUPPRESSED if policy.small_cell_action == "Suppress" else Outcome.BLOCKED
        )
        review.findings.append(Finding(Rule.MIN_CELL_COUNT, small, table.name))
    review.tables.append(table.model_copy(update={"rows": rows}))


def review_statistic(
    statistic: Statistic, policy: DisclosurePolicy, audited: int | None, review: TableReview
) -> None:
    if audited is not None and statistic.n > audited:
        review.findings.append(Finding(Rule.COHORT_SIZE_MISMATCH, Outcome.BLOCKED, statistic.name))
    if _small(statistic.n, policy):
        if policy.small_cell_action == "Block":
            review.findings.append(Finding(Rule.MIN_CELL_COUNT, Outcome.BLOCKED, statistic.name))
            return
        review.findings.append(Finding(Rule.MIN_CELL_COUNT, SUPPRESSED, statistic.name))
        review.suppressed_cells += 1
        return
    review.statistics.append(statistic)


def review_tables(
    tables: list[ResultTable],
    statistics: list[Statistic],
    policy: DisclosurePolicy,
    audited: int | None,
) -> TableReview:
    review = TableReview()
    for table in tables:
        review_table(table, policy, audited, review)
    for statistic in statistics:
        review_statistic(statistic, policy, audited, review)
    return review
