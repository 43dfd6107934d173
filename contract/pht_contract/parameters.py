"""Whether a Train's ``parameters`` stay inside the bounds a standing approval declared.

A standing approval covers many Trains the steward never sees; their parameters are chosen by
the requester, and a chosen centre or scale can make a released aggregate reveal one patient.
So every key must be declared, every value must have the declared type and keep its bounds,
and anything this checker does not understand is refused rather than let through. Messages
name the parameter and the bound, never the value.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pht_contract.approvals import ParameterBound


class ParameterRefusal(ValueError):
    """The parameters break a bound; the message names the parameter and the bound."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins: the checker and the train must see
    # the same value, so a repeated key is refused outright.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ParameterRefusal(f"key {key!r} appears more than once")
        found[key] = value
    return found


def _refuse_constant(name: str) -> float:
    # NaN compares false with every bound, so it would pass minimum and maximum.
    raise ParameterRefusal(f"{name} is not a finite number")


def parse_parameters(text: str | None) -> dict[str, Any]:
    """The parameters object, refusing repeated keys and NaN/Infinity."""
    if text is None:
        return {}
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant
        )
    except ParameterRefusal:
        raise
    except json.JSONDecodeError as exc:
        raise ParameterRefusal(f"not valid JSON: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
        raise ParameterRefusal("parameters cannot be read as bounded JSON") from exc
    if not isinstance(value, dict):
        raise ParameterRefusal("parameters must be a JSON object")
    return value


def _is_type(value: Any, kind: str) -> bool:
    # bool is an int in Python; JSON keeps them apart, and so does this check.
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            # A JSON integer too large for a double is no number a train can compute with.
            return math.isfinite(float(value))
        except OverflowError:
            return False
    if kind == "string":
        return isinstance(value, str)
    return False


def _check_scalar(where: str, value: Any, kind: str, bound: ParameterBound) -> None:
    if not _is_type(value, kind):
        raise ParameterRefusal(f"{where} must be of type {kind}")
    if kind in ("integer", "number"):
        # Compared as given: Python compares int and float exactly, with no overflow.
        number: int | float = value
        if bound.minimum is not None and number < bound.minimum:
            raise ParameterRefusal(f"{where} is below the approved minimum {bound.minimum:g}")
        if bound.maximum is not None and number > bound.maximum:
            raise ParameterRefusal(f"{where} is above the approved maximum {bound.maximum:g}")
        if bound.enum is not None and not any(float(e) == number for e in bound.enum):
            raise ParameterRefusal(f"{where} is not one of the approved values")
    elif kind == "string":
        if bound.max_length is not None and len(value) > bound.max_length:
            raise ParameterRefusal(
                f"{where} is longer than the approved {bound.max_length} characters"
            )
        if bound.enum is not None and value not in bound.enum:
            raise ParameterRefusal(f"{where} is not one of the approved values")


def _check_one(bound: ParameterBound, value: Any) -> None:
    name = bound.name
    if bound.type == "array":
        if not isinstance(value, list):
            raise ParameterRefusal(f"{name} must be of type array")
        if bound.max_items is not None and len(value) > bound.max_items:
            raise ParameterRefusal(f"{name} has more than the approved {bound.max_items} items")
        assert bound.items is not None  # the model requires it for arrays
        for index, item in enumerate(value):
            _check_scalar(f"{name}[{index}]", item, bound.items, bound)
    elif bound.type == "object":
        if not isinstance(value, dict):
            raise ParameterRefusal(f"{name} must be of type object")
        if bound.max_items is not None and len(value) > bound.max_items:
            raise ParameterRefusal(f"{name} has more than the approved {bound.max_items} entries")
        assert bound.items is not None  # the model requires it for objects
        for key, item in value.items():
            if bound.keys is not None and key not in bound.keys:
                raise ParameterRefusal(f"{name} holds key {key!r}, which is not approved")
            _check_scalar(f"{name}.{key}", item, bound.items, bound)
    else:
        _check_scalar(name, value, bound.type, bound)


def check_parameters(text: str | None, bounds: list[ParameterBound]) -> None:
    """Raise :class:`ParameterRefusal` unless every parameter is declared and in bounds."""
    values = parse_parameters(text)
    declared = {bound.name: bound for bound in bounds}
    for key in sorted(values):
        if key not in declared:
            raise ParameterRefusal(f"parameter {key!r} is not covered by the approval")
    for bound in bounds:
        if bound.name not in values:
            if bound.required:
                raise ParameterRefusal(f"parameter {bound.name!r} is required by the approval")
            continue
        _check_one(bound, values[bound.name])
