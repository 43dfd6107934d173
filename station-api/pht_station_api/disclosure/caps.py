"""Bounds on a whole result, not per table: a result may hold 32 tables and 1024 statistics.

Per-table bounds alone let a train spread one patient per row over many tables. So, over
everything a result would release:

* at most ``maxCellsPerResult`` non-empty cells and statistics (``TooManyCells``, blocked);
* at most ``maxLabelledRowsPerResult`` released rows (``TooManyLabelledRows``, blocked), and no
  more than the cohort can fill with ``minCellCount`` patients each (``CountsExceedCohort``,
  blocked) — the per-table bound, summed over tables;
* derived numbers (statistics and statistic cells): more than one per ``minCellCount``
  patients is more detail than the cohort supports without a steward's look
  (``ValuesExceedCohort``, held). One statistic per patient, each claiming the whole cohort
  as its ``n``, is the attack this stops.

The cohort is what the audited queries saw; when the audit saw none (the result is held for
that anyway) the largest cohort the result claims.
"""

from pht_contract.manifests import ResultManifest, ResultTable, Statistic
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure.decisions import Finding, Outcome, Rule


def _cells(manifest: ResultManifest) -> int:
    return sum(
        sum(1 for row in table.rows for cell in row if cell is not None)
        for table in manifest.tables
    ) + len(manifest.statistics)


def _released_rows(tables: list[ResultTable]) -> int:
    return sum(
        sum(1 for row in table.rows if any(cell is not None for cell in row))
        for table in tables
        if table.kind == "Aggregate"
    )


def _derived_values(tables: list[ResultTable], statistics: list[Statistic]) -> int:
    cells = 0
    for table in tables:
        columns = [i for i, c in enumerate(table.columns) if c.role == "Statistic"]
        cells += sum(1 for row in table.rows for i in columns if row[i] is not None)
    return cells + len(statistics)


def review_caps(
    submitted: ResultManifest,
    tables: list[ResultTable],
    statistics: list[Statistic],
    policy: DisclosurePolicy,
    audited: int | None,
) -> list[Finding]:
    """Findings for the whole result; ``tables``/``statistics`` are what would be released."""
    findings: list[Finding] = []
    if _cells(submitted) > policy.max_cells_per_result:
        findings.append(Finding(Rule.TOO_MANY_CELLS, Outcome.BLOCKED))
    claimed = [t.cohort_size for t in submitted.tables] + [s.n for s in submitted.statistics]
    cohort = audited if audited is not None else max(claimed, default=0)
    rows = _released_rows(tables)
    if rows > policy.max_labelled_rows_per_result:
        findings.append(Finding(Rule.TOO_MANY_LABELLED_ROWS, Outcome.BLOCKED))
    if rows * policy.min_cell_count > cohort:
        findings.append(Finding(Rule.COUNTS_EXCEED_COHORT, Outcome.BLOCKED))
    if _derived_values(tables, statistics) * policy.min_cell_count > cohort:
        findings.append(Finding(Rule.VALUES_EXCEED_COHORT, Outcome.HELD))
    return findings
