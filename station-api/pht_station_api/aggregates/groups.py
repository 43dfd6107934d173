"""Grouping patients by releasable variables (the ``by`` of a station-computed table).

Each ``by`` variable must be one of the policy's releasable variables with categorical values;
a table lists every combination of those values, in the order the steward listed them, so that
an empty group is judged like any other cell. A patient's label is read from its record
(:func:`~pht_station_api.aggregates.answers.label`); an unbound value is ``missing`` when the
steward listed ``missing``, and a patient whose label is not listed is left out of the table —
its label is never released.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Final

from pht_contract.policies import DisclosurePolicy
from pht_station_api.aggregates.answers import Answer, Value, label

MISSING_LABEL: Final = "missing"
UNKNOWN_VARIABLE: Final = "UnknownVariable"
LABEL_NOT_RELEASABLE: Final = "LabelNotReleasable"
NOT_CATEGORICAL: Final = "NotCategorical"
#: A ``by`` variable repeated, or named like one of the table's own columns.
DUPLICATE_COLUMN: Final = "DuplicateColumn"
#: More rows than the policy's ``maxLabelledRowsPerResult``.
TOO_MANY_ROWS: Final = "TooManyRows"


@dataclass(frozen=True)
class Grouping:
    """The ``by`` variables and the labels each may take, as the policy lists them."""

    variables: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    def combinations(self) -> list[tuple[str, ...]]:
        """Every combination of listed labels, in listed order (one empty tuple without ``by``)."""
        return list(product(*self.values))

    def group_of(self, record: Mapping[str, Value]) -> tuple[str, ...] | None:
        """The patient's labels, or ``None`` when one of them is not listed (left out)."""
        labels: list[str] = []
        for variable, allowed in zip(self.variables, self.values, strict=True):
            text = label(record.get(variable))
            if text is None:
                text = MISSING_LABEL
            if text not in allowed:
                return None
            labels.append(text)
        return tuple(labels)


def grouping(
    by: Sequence[str],
    answer: Answer,
    policy: DisclosurePolicy,
    own_columns: Sequence[str],
    rows_per_group: int = 1,
) -> Grouping | str:
    """The grouping ``by`` declares, or the rule it breaks (``LabelNotReleasable``, …).

    ``own_columns`` are the table's other column names, which a ``by`` variable may not take;
    a table of ``rows_per_group`` rows per combination of labels may not have more rows than
    the policy's ``maxLabelledRowsPerResult`` (``TooManyRows``).
    """
    listed = {variable.name: variable for variable in policy.releasable_variables}
    values: list[tuple[str, ...]] = []
    for variable in by:
        releasable = listed.get(variable)
        if releasable is None:
            return LABEL_NOT_RELEASABLE
        if not releasable.values:
            return NOT_CATEGORICAL
        if variable not in answer.variables:
            return UNKNOWN_VARIABLE
        values.append(tuple(dict.fromkeys(releasable.values)))
    if len(set(by)) != len(by) or set(by) & set(own_columns):
        return DUPLICATE_COLUMN
    if math.prod(len(labels) for labels in values) * rows_per_group > (
        policy.max_labelled_rows_per_result
    ):
        return TOO_MANY_ROWS
    return Grouping(tuple(by), tuple(values))
