"""Group labels: only a steward's releasable variables, and only values in their domains.

A label is the one place a table can carry free content: a patient identifier as a group with a
claimed count of five is that patient's row. So a Group column must be named after a variable
the policy lists as releasable, and each label must be one of its values (or, for a numeric
variable such as a time point, a whole number in its range). The policy decides what may label
a row; the algorithm cannot widen it.

Numeric labels must be whole numbers (``365`` or ``365.0``, never ``365.25``): a label leaves
as sent, unrounded, and a double in ``[0, 36525]`` with free fractional digits carries some
fifty bits of whatever the algorithm chose per row.
"""

from pht_contract.manifests import Cell, ResultTable
from pht_contract.policies import DisclosurePolicy, ReleasableVariable
from pht_station_api.disclosure.numbers import as_double


def releasable(variable: ReleasableVariable, label: Cell) -> bool:
    if label is None:
        return True
    if isinstance(label, str):
        return label in variable.values
    number = as_double(label)
    if number is None or variable.minimum is None or variable.maximum is None:
        return False
    return number.is_integer() and variable.minimum <= number <= variable.maximum


def labels_releasable(table: ResultTable, policy: DisclosurePolicy) -> bool:
    """True when every Group column is a releasable variable and every label in its domain."""
    variables = {v.name: v for v in policy.releasable_variables}
    groups = [(i, variables.get(c.name)) for i, c in enumerate(table.columns) if c.role == "Group"]
    for _index, variable in groups:
        if variable is None:
            return False
    return all(
        releasable(variable, row[index])
        for row in table.rows
        for index, variable in groups
        if variable is not None
    )
