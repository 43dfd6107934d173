"""SPARQL JSON terms turned into Python values.

Typed literals become the matching Python type so an algorithm computes on numbers and dates,
not strings: integers (and XSD's derived integer types) → ``int``; ``decimal``, ``double`` and
``float`` → ``float`` (statistics do not need exact decimals); ``boolean`` → ``bool``;
``date`` → :class:`datetime.date`; ``dateTime`` → :class:`datetime.datetime`. IRIs, blank
nodes, plain and language-tagged literals and other datatypes stay ``str``.
"""

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from pht_train.errors import ResultFormatError

XSD = "http://www.w3.org/2001/XMLSchema#"

#: A value in a row: what a SPARQL term becomes (``None`` for an unbound variable).
Value = str | int | float | bool | date | datetime | None

_INTEGER_TYPES = (
    "integer",
    "int",
    "long",
    "short",
    "byte",
    "nonNegativeInteger",
    "nonPositiveInteger",
    "positiveInteger",
    "negativeInteger",
    "unsignedLong",
    "unsignedInt",
    "unsignedShort",
    "unsignedByte",
)


def _boolean(text: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError("not an xsd:boolean")


def _float(text: str) -> float:
    # XSD spells infinity INF; Python's float() wants inf.
    return float({"INF": "inf", "+INF": "inf", "-INF": "-inf"}.get(text.strip(), text))


def _datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


def _date(text: str) -> date:
    text = text.strip()
    # xsd:date may carry a timezone (2020-01-01Z, 2020-01-01+02:00); a date has none in Python.
    return date.fromisoformat(text[:10] if len(text) > 10 else text)


_CONVERTERS: dict[str, Callable[[str], Value]] = {
    **{XSD + name: int for name in _INTEGER_TYPES},
    XSD + "decimal": float,
    XSD + "double": _float,
    XSD + "float": _float,
    XSD + "boolean": _boolean,
    XSD + "date": _date,
    XSD + "dateTime": _datetime,
}


def convert_term(term: Mapping[str, Any]) -> Value:
    """One SPARQL JSON term (``{"type": ..., "value": ...}``) as a Python value."""
    kind = term.get("type")
    value = term.get("value")
    if not isinstance(value, str) or kind not in ("uri", "literal", "typed-literal", "bnode"):
        raise ResultFormatError("a binding is not a SPARQL JSON term")
    if kind == "bnode":
        return "_:" + value
    datatype = term.get("datatype")
    if kind == "uri" or not isinstance(datatype, str):
        return value
    converter = _CONVERTERS.get(datatype)
    if converter is None:
        return value
    try:
        return converter(value)
    except ValueError:
        # Name the datatype, never the value: it may be patient data.
        raise ResultFormatError(
            f"a literal does not match its datatype {datatype.removeprefix(XSD)}"
        ) from None
