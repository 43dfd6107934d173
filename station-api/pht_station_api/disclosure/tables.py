"""Statistical disclosure control for declared tables and summary statistics.

* The cohort behind every table must reach ``minCohort``; the table's claimed cohort may not
  exceed what the audited queries saw (the algorithm's word is checked, not trusted).
* An ``Aggregate`` table must have a ``Count`` column: without one, nothing says how many
  patients stand behind a row, and a table of free labels is row-level data by another name.
* A row is released only when its counts show it stands for at least ``minCellCount``
  patients. A row whose counts are all zero or empty stands for nobody and carries nothing
  releasable; a row with a non-zero count below ``minCellCount`` is a small cell (DataSHIELD's
  ``nfilter.tab``). With ``Suppress`` such a row is emptied *throughout* — its group labels too,
  since a label of 64 free characters over one patient is that patient's row — and with
  ``Block`` the result is blocked naming the rule and the table, never the cell.
* Every released row stands for at least ``minCellCount`` patients, so a table may release at
  most ``cohort ÷ minCellCount`` rows (``CountsExceedCohort``). Counts are the algorithm's
  claims, so this is what bounds how many labels, one per patient or not, can leave. (The sum
  of a count column is not the bound: a survival table's at-risk column repeats the same
  patients at every time point, and a margin row repeats every group.)
* A statistic whose ``n`` is below ``minCellCount`` (zero included: a "statistic over nobody"
  is an arbitrary number the algorithm chose) is a small cell too.
* Row-level tables are blocked when the policy forbids them and otherwise held for a steward.
* Group labels come only from the policy's releasable variables and their value domains
  (``LabelNotReleasable``, see :mod:`.labels`), and an aggregate table has one row per group
  (``DuplicateGroupRow``): repeated labels would let statistic cells carry one row per patient.
* Statistic cells and statistic values must be finite doubles (``InvalidNumber``) and leave
  rounded to the policy's significant digits (see :mod:`.numbers`).

Suppression here is primary only: a margin total elsewhere in the result can still let a reader
recompute a suppressed cell, which is one reason a steward can hold and review any result.
"""

import math
from dataclasses import dataclass, field

from pht_contract.manifests import ResultTable, Statistic
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure.decisions import SUPPRESSED, Finding, Outcome, Rule
from pht_station_api.disclosure.labels import labels_releasable
from pht_station_api.disclosure.numbers import as_double, round_significant


@dataclass
class TableReview:
    findings: list[Finding] = field(default_factory=list)
    tables: list[ResultTable] = field(default_factory=list)
    statistics: list[Statistic] = field(default_factory=list)
    suppressed_cells: int = 0


def _number(cell: object) -> float | None:
    """A count cell as a float; a number that is no double (a huge integer) becomes NaN."""
    if isinstance(cell, bool):
        return float(cell)
    if isinstance(cell, int | float):
        double = as_double(cell)
        return math.nan if double is None else double
    return None


def _small(value: float, policy: DisclosurePolicy) -> bool:
    return 0 < value < policy.min_cell_count


def _suppression(policy: DisclosurePolicy) -> Outcome | str:
    return SUPPRESSED if policy.small_cell_action == "Suppress" else Outcome.BLOCKED


def _check_cohort(
    name: str, cohort: int, policy: DisclosurePolicy, audited: int | None, review: TableReview
) -> None:
    if cohort < policy.min_cohort:
        review.findings.append(Finding(Rule.MIN_COHORT, Outcome.BLOCKED, name))
    if audited is not None and cohort > audited:
        review.findings.append(Finding(Rule.COHORT_SIZE_MISMATCH, Outcome.BLOCKED, name))


@dataclass
class _RowTally:
    """What the rows of one table showed, counted without keeping any cell value."""

    invalid: int = 0
    too_large: int = 0
    small: int = 0
    empty: int = 0
    released: int = 0
    invalid_numbers: int = 0
    duplicate_groups: int = 0
    rows: list[list[int | float | str | None]] = field(default_factory=list)


def _group_key(label: object) -> tuple[str, object]:
    """A label as compared for duplicates: 365 and 365.0 are the same time point."""
    number = as_double(label)
    return ("number", number) if number is not None else ("label", label)


def _whole_label(label: int | float | str | None) -> int | float | str | None:
    """A numeric label as a whole number: ``365.0`` and ``-0.0`` leave as ``365`` and ``0``.

    A label that is not whole blocks the table (``LabelNotReleasable``); spelling one number two
    ways would still carry a bit per label.
    """
    number = as_double(label)
    return int(number) if number is not None and number.is_integer() else label


def _rounded_statistics(
    row: list[int | float | str | None],
    statistics: list[int],
    groups: list[int],
    digits: int,
    tally: _RowTally,
) -> list[int | float | str | None]:
    """The row with its statistic cells rounded (a cell that is no double is counted invalid)
    and its numeric labels as whole numbers."""
    out = list(row)
    for index in groups:
        out[index] = _whole_label(row[index])
    for index in statistics:
        cell = row[index]
        if cell is None:
            continue
        double = as_double(cell)
        if double is None:
            tally.invalid_numbers += 1
            out[index] = None
        else:
            out[index] = round_significant(double, digits)
    return out


def _review_rows(table: ResultTable, policy: DisclosurePolicy, review: TableReview) -> _RowTally:
    tally = _RowTally()
    counts = table.count_columns()
    statistics = [i for i, c in enumerate(table.columns) if c.role == "Statistic"]
    groups = [i for i, c in enumerate(table.columns) if c.role == "Group"]
    seen: set[tuple[object, ...]] = set()
    suppress = policy.small_cell_action == "Suppress"
    for row in table.rows:
        values = [_number(row[i]) for i in counts]
        finite = [x for x in values if x is not None and math.isfinite(x)]
        if len(finite) != sum(1 for x in values if x is not None) or any(x < 0 for x in finite):
            tally.invalid += 1
        if any(x > table.cohort_size for x in finite):
            tally.too_large += 1
        small = any(_small(x, policy) for x in finite)
        empty = not any(x > 0 for x in finite)
        tally.small += small
        tally.empty += empty and not small
        if small or empty:
            if suppress:
                review.suppressed_cells += sum(1 for cell in row if cell is not None)
                tally.rows.append([None] * len(row))
                continue
        else:
            tally.released += 1
            key = tuple(_group_key(row[i]) for i in groups)
            tally.duplicate_groups += key in seen
            seen.add(key)
        tally.rows.append(
            _rounded_statistics(row, statistics, groups, policy.significant_digits, tally)
        )
    return tally


def review_table(
    table: ResultTable, policy: DisclosurePolicy, audited: int | None, review: TableReview
) -> None:
    if table.kind == "RowLevel":
        effect = Outcome.BLOCKED if policy.forbid_row_level else Outcome.HELD
        rule = Rule.ROW_LEVEL_FORBIDDEN if policy.forbid_row_level else Rule.ROW_LEVEL_REVIEW
        review.findings.append(Finding(rule, effect, table.name))
    elif not table.count_columns():
        review.findings.append(Finding(Rule.COUNT_COLUMN_REQUIRED, Outcome.BLOCKED, table.name))
    elif not labels_releasable(table, policy):
        review.findings.append(Finding(Rule.LABEL_NOT_RELEASABLE, Outcome.BLOCKED, table.name))
    _check_cohort(table.name, table.cohort_size, policy, audited, review)
    tally = _review_rows(table, policy, review)
    if tally.invalid:
        review.findings.append(Finding(Rule.INVALID_COUNT, Outcome.BLOCKED, table.name))
    if tally.invalid_numbers:
        review.findings.append(Finding(Rule.INVALID_NUMBER, Outcome.BLOCKED, table.name))
    if tally.duplicate_groups and table.kind == "Aggregate":
        review.findings.append(Finding(Rule.DUPLICATE_GROUP_ROW, Outcome.BLOCKED, table.name))
    if tally.too_large:
        review.findings.append(Finding(Rule.COHORT_SIZE_MISMATCH, Outcome.BLOCKED, table.name))
    if tally.released * policy.min_cell_count > table.cohort_size:
        review.findings.append(Finding(Rule.COUNTS_EXCEED_COHORT, Outcome.BLOCKED, table.name))
    if tally.small:
        review.findings.append(Finding(Rule.MIN_CELL_COUNT, _suppression(policy), table.name))
    if tally.empty:
        review.findings.append(Finding(Rule.ZERO_COUNT_ROW, _suppression(policy), table.name))
    review.tables.append(table.model_copy(update={"rows": tally.rows}))


def review_statistic(
    statistic: Statistic, policy: DisclosurePolicy, audited: int | None, review: TableReview
) -> None:
    if audited is not None and statistic.n > audited:
        review.findings.append(Finding(Rule.COHORT_SIZE_MISMATCH, Outcome.BLOCKED, statistic.name))
    if statistic.n < policy.min_cell_count:
        review.findings.append(Finding(Rule.MIN_CELL_COUNT, _suppression(policy), statistic.name))
        if policy.small_cell_action == "Suppress":
            review.suppressed_cells += 1
        return
    value = as_double(statistic.value)
    if value is None:
        review.findings.append(Finding(Rule.INVALID_NUMBER, Outcome.BLOCKED, statistic.name))
        return
    rounded = round_significant(value, policy.significant_digits)
    review.statistics.append(statistic.model_copy(update={"value": rounded}))


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
