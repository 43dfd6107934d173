"""Copies of decoded JSON (Kubernetes objects as dicts and lists).

The watch cache keeps its own copy of every object it is handed, so that nothing the watch
machinery or a pass does to one copy changes the other. Decoded JSON holds only dicts, lists
and immutable scalars, which this copies several times faster than :func:`copy.deepcopy`
(no memo, no dispatch on types it cannot hold).
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

T = TypeVar("T")


def copy_json(value: T) -> T:
    """A deep copy of ``value`` (dicts and lists are copied, scalars shared)."""
    return _copy(value)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)  # anything else (a mapping view, a tuple): the general way
