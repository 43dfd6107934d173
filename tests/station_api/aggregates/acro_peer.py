"""ACRO (SACRO's output checker, ``acro`` 1.0.2) as a peer for the station's disclosure rules.

ACRO is what trusted research environments run on a researcher's tables before release. Here
it is configured from a :class:`DisclosurePolicy`'s thresholds, given the same patient records
the station reads from a query's answer, and asked for its verdict on every cell of a count
cross-table, a mean cross-table and a Kaplan–Meier table. A verdict is the set of the
station's rule names that ACRO's failing checks stand for (empty: ACRO passes the cell).

ACRO is run quietly and in memory: nothing is written (no ``finalise``), matplotlib keeps its
cache in a temporary folder, and the logging set-up ACRO does when imported is undone.

Configuration mapping (ACRO's yaml key ← the station's policy):

* ``safe_threshold`` ← ``minCellCount``
* ``zeros_are_disclosive`` ← ``aggregates.zerosAreDisclosive``
* ``safe_nk_n`` / ``safe_nk_k`` ← ``aggregates.dominanceN`` / ``aggregates.dominanceK``
* ``safe_pratio_p`` ← ``aggregates.pRatio``
* ``safe_dof_threshold`` ← ``aggregates.minResidualDof``
* ``survival_safe_threshold`` ← ``minCellCount``; ACRO 1.0.2 reads its survival threshold from
  the module constant ``acro.acro_tables.SURVIVAL_THRESHOLD`` rather than from the yaml key,
  so the peer sets both.

ACRO's per-cell outcome is read for counts and means. For a standard deviation ACRO 1.0.2 runs
only a whole-table degrees-of-freedom check, and for a survival table a whole-table check that
the patients outnumber the distinct follow-up times by ``safe_dof_threshold``; neither gives a
per-cell verdict, so neither is compared cell by cell.
"""

import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import pandas as pd

from pht_contract.policies import DisclosurePolicy, ReleasableVariable
from pht_station_api.aggregates.answers import Answer, died, label, number

#: ACRO's checks, by the name the station gives the same rule.
CHECK_RULES: Final = {
    "MinimumThresholdCheck": "MinCellCount",
    "PresenceOfZeroCheck": "ZeroCell",
    "NKCheck": "Dominance",
    "PPercentCheck": "PRatio",
}
MISSING_LABEL: Final = "missing"
#: The label of the constant that stands in for a missing axis (a one-way table or a total).
_CONSTANT: Final = "__peer_constant__"


def _import_acro() -> Any:
    """``acro``, imported without leaving its logging and warning set-up behind."""
    os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="acro-mpl-"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with warnings.catch_warnings():
        import acro
        import acro.acro_tables
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("acro", "acro:records", "acro:summary"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return acro


ACRO: Final = _import_acro()

#: One cell's labels, in the order of ``by`` (empty for a total).
Key = tuple[str, ...]
#: Per cell, the station's names for the rules ACRO fails it on (empty: ACRO passes it).
Verdicts = dict[Key, frozenset[str]]


def acro_session(policy: DisclosurePolicy) -> Any:
    """An ACRO session (no mitigation: it reports, the station suppresses) with the policy's
    thresholds."""
    rules = policy.aggregates
    session = ACRO.ACRO(suppress=False)
    session.config.update(
        safe_threshold=policy.min_cell_count,
        zeros_are_disclosive=rules.zeros_are_disclosive,
        safe_nk_n=rules.dominance_n,
        safe_nk_k=rules.dominance_k,
        safe_pratio_p=rules.p_ratio,
        safe_dof_threshold=rules.min_residual_dof,
        survival_safe_threshold=policy.min_cell_count,
        check_missing_values=False,
    )
    # The checks read the same dictionary; make sure ACRO did not copy it.
    assert session.sdc_checks.risk_appetite is session.config
    return session


def _category(frame: pd.DataFrame, name: str, values: Sequence[str]) -> pd.Series:
    return pd.Series(pd.Categorical(frame[name], categories=list(values)), name=name)


def _group_label(value: object, variable: ReleasableVariable) -> str | None:
    """The patient's label for a ``by`` variable, or None when it is not a listed value."""
    text = label(value)  # type: ignore[arg-type]
    if text is None:
        text = MISSING_LABEL
    return text if text in variable.values else None


def patient_frame(
    answer: Answer,
    by: Sequence[ReleasableVariable],
    numbers: Sequence[str] = (),
    survival: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """One row per patient the station reads: a label per ``by`` variable, the ``numbers``
    and, with ``survival`` (time, event), follow-up days and a 0/1 death indicator.

    A patient is left out, as the station leaves them out, when a label is not among the
    listed values (unbound reads ``missing`` when that is listed) or a needed value cannot
    be read.
    """
    rows: list[dict[str, object]] = []
    for record in answer.patients:
        row: dict[str, object] = {}
        for variable in by:
            group = _group_label(record.get(variable.name), variable)
            if group is None:
                break
            row[variable.name] = group
        else:
            for name in numbers:
                row[name] = number(record.get(name))
            if survival is not None:
                time, event = survival
                row[time] = number(record.get(time))
                dead = died(record.get(event))
                row[event] = None if dead is None else int(dead)
            if all(value is not None for value in row.values()):
                rows.append(row)
    columns = [v.name for v in by] + list(numbers) + (list(survival) if survival else [])
    frame = pd.DataFrame(rows, columns=columns)
    for name in numbers:
        frame[name] = frame[name].astype(float)
    return frame


def _axes(
    frame: pd.DataFrame, by: Sequence[ReleasableVariable]
) -> tuple[list[pd.Series], list[pd.Series]]:
    """Rows and columns of an ACRO cross-table: all but the last ``by`` variable down, the
    last across; a constant stands in for a missing axis."""

    def constant(name: str) -> pd.Series:
        values = pd.Categorical([_CONSTANT] * len(frame), categories=[_CONSTANT])
        return pd.Series(values, name=name)

    series = [_category(frame, v.name, v.values) for v in by]
    if len(series) == 0:
        return [constant("peer_rows")], [constant("peer_columns")]
    if len(series) == 1:
        return series, [constant("peer_columns")]
    return series[:-1], series[-1:]


def _cells(outcome: pd.DataFrame, width: int) -> Iterator[tuple[Key, str]]:
    """Every cell of ACRO's outcome frame as (labels in ``by`` order, ACRO's text)."""
    for row_label, row in outcome.iterrows():
        row_labels = row_label if isinstance(row_label, tuple) else (row_label,)
        for column_label, text in row.items():
            column_labels = column_label if isinstance(column_label, tuple) else (column_label,)
            labels = tuple(str(x) for x in (*row_labels, *column_labels))
            key = tuple(x for x in labels if x != _CONSTANT)
            assert len(key) == width, "ACRO's table has other dimensions than asked"
            yield key, str(text)


def _flags(text: str) -> frozenset[str]:
    """The station's rule names for the checks ACRO lists in an outcome cell."""
    if text.strip() == "ok":
        return frozenset()
    checks = [part.strip() for part in text.split(";") if part.strip()]
    unknown = [check for check in checks if check not in CHECK_RULES]
    if unknown:
        raise AssertionError(f"ACRO reports a check the peer does not map: {unknown}")
    return frozenset(CHECK_RULES[check] for check in checks)


def _last_outcome(session: Any) -> pd.DataFrame:
    record = session.results.results[f"output_{session.results.output_id - 1}"]
    outcome = record.outcome
    assert isinstance(outcome, pd.DataFrame)
    return outcome


def count_verdicts(
    frame: pd.DataFrame, by: Sequence[ReleasableVariable], policy: DisclosurePolicy
) -> Verdicts:
    """ACRO's verdict on every cell of the count cross-table of ``frame`` by ``by``."""
    session = acro_session(policy)
    index, columns = _axes(frame, by)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        session.crosstab(index, columns)
    return {key: _flags(text) for key, text in _cells(_last_outcome(session), len(by))}


def mean_verdicts(
    frame: pd.DataFrame,
    by: Sequence[ReleasableVariable],
    variable: str,
    policy: DisclosurePolicy,
) -> Verdicts:
    """ACRO's verdict on every cell of the table of means of ``variable`` by ``by``."""
    session = acro_session(policy)
    index, columns = _axes(frame, by)
    values = frame[variable].astype(float).rename(variable)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        session.crosstab(index, columns, values=values, aggfunc="mean")
    return {key: _flags(text) for key, text in _cells(_last_outcome(session), len(by))}


#: Added to every number at risk handed to ACRO's survival rounding (see
#: :func:`survival_verdicts`): its decisions read only differences of numbers at risk.
_AT_RISK_OFFSET: Final = 1_000_000


def survival_verdicts(
    frame: pd.DataFrame,
    time: str,
    points: Sequence[int],
    policy: DisclosurePolicy,
    at_risk_after: bool = False,
) -> dict[int, frozenset[str]]:
    """ACRO's survival rounding (``surv_func``'s suppression) applied to the station's grid.

    ACRO shows a survival step only once at least its threshold of patients have left the risk
    set since the last step it showed; until then it repeats the last shown value. Here its own
    rounding (``acro.acro_tables._rounded_survival_table``) walks a table whose first row is
    the start (everyone at risk) and whose other rows are the grid points with their numbers at
    risk: as ACRO (statsmodels) counts them, the patients followed up to at least the point,
    or with ``at_risk_after`` as the station counts them, those followed beyond it. To read
    which rows it shows, each row carries one probe event and every number at risk is raised
    by the same large offset (ACRO compares only differences of numbers at risk, so its
    decisions do not change): a shown row is exactly one where ACRO's rounded curve drops.

    Per point: ``{"SurvivalDrop"}`` where ACRO holds the point back, empty where it shows it.
    """
    ACRO.acro_tables.SURVIVAL_THRESHOLD = policy.min_cell_count
    times = frame[time].astype(float).to_numpy()
    followed = (lambda p: times > p) if at_risk_after else (lambda p: times >= p)
    at_risk = [len(times)] + [int(followed(point).sum()) for point in points]
    table = pd.DataFrame(
        {
            "num at risk": [n + _AT_RISK_OFFSET for n in at_risk],
            "num events": [1] * len(at_risk),
            "Surv prob": [1.0] * len(at_risk),
        }
    )
    rounded = ACRO.acro_tables._rounded_survival_table(table)["rounded_survival_fun"].tolist()
    return {
        point: frozenset() if rounded[row + 1] < rounded[row] else frozenset({"SurvivalDrop"})
        for row, point in enumerate(points)
    }


def releasable(policy: DisclosurePolicy, names: Sequence[str]) -> list[ReleasableVariable]:
    """The policy's releasable variables of these names, in this order."""
    found: Mapping[str, ReleasableVariable] = {v.name: v for v in policy.releasable_variables}
    return [found[name] for name in names]
