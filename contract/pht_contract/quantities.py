"""Kubernetes resource quantities ("500m", "4Gi", "1e3") as exact numbers for comparisons."""

import re
from decimal import Decimal, InvalidOperation
from typing import Final

QUANTITY_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][0-9]+)?$"

_SUFFIXES: Final = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_RE: Final = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*|[eE][0-9]+)$")


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """Return the quantity's value in base units (cores, bytes)."""
    match = _RE.match(text.strip())
    if not match:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{text!r} is not a Kubernetes quantity") from exc
    if suffix[:1] in ("e", "E") and suffix[1:].isdigit():
        return value * (Decimal(10) ** int(suffix[1:]))
    if suffix not in _SUFFIXES:
        raise QuantityError(f"{text!r} has an unknown suffix {suffix!r}")
    return value * _SUFFIXES[suffix]
