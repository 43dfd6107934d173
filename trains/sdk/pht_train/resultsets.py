"""A SELECT or ASK answer from the gateway, as rows (dicts) or columns (lists)."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pht_train.errors import ResultFormatError
from pht_train.terms import Value, convert_term

Row = dict[str, Value]


@dataclass(frozen=True)
class ResultSet:
    """The typed answer of one query: ``variables`` in SELECT order, ``rows`` in result order.

    For an ASK query ``boolean`` holds the answer and there are no rows.
    """

    variables: tuple[str, ...]
    rows: tuple[Row, ...]
    boolean: bool | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def column(self, variable: str) -> list[Value]:
        """The values of one variable, row by row (``None`` where unbound)."""
        if variable not in self.variables:
            raise KeyError(f"the query selects no variable {variable!r}")
        return [row[variable] for row in self.rows]

    def columns(self) -> dict[str, list[Value]]:
        """Every variable's values, row by row: the shape numeric code wants."""
        return {variable: self.column(variable) for variable in self.variables}


def parse_results(document: Any) -> ResultSet:
    """Read a decoded ``application/sparql-results+json`` document."""
    if not isinstance(document, Mapping) or not isinstance(document.get("head"), Mapping):
        raise ResultFormatError("the answer is not a SPARQL JSON result (no head)")
    if "boolean" in document:
        answer = document["boolean"]
        if not isinstance(answer, bool):
            raise ResultFormatError("an ASK answer must be true or false")
        return ResultSet(variables=(), rows=(), boolean=answer)
    variables = document["head"].get("vars", [])
    results = document.get("results")
    if (
        not isinstance(variables, list)
        or not all(isinstance(v, str) for v in variables)
        or not isinstance(results, Mapping)
        or not isinstance(results.get("bindings"), list)
    ):
        raise ResultFormatError("the answer is not a SPARQL JSON result (vars or bindings)")
    rows = []
    for binding in results["bindings"]:
        if not isinstance(binding, Mapping):
            raise ResultFormatError("a result row is not an object")
        rows.append({v: convert_term(binding[v]) if v in binding else None for v in variables})
    return ResultSet(variables=tuple(variables), rows=tuple(rows))
