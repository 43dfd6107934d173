"""Copies of decoded JSON (Kubernetes objects as dicts and lists).

The watch cache keeps its own copy of every object it is handed, so that nothing the watch
machinery or a pass does to one copy changes the other. Decoded JSON holds only dicts, lists
and immutable scalars, which this copies several times faster than :func:`copy.deepcopy`
(no memo, no dispatch on types it cannot hold).

The copy's dict keys and short string values are interned: a JSON decoder makes new strings for
every document, so a thousand cached Trains would otherwise hold a thousand copies of
``"lastTransitionTime"``, ``"True"``, the namespace and every other field name and condition
reason, condition message and image reference (about 4 KiB per Train). Longer strings (queries,
free text) are rarely repeated and are shared with the original instead. Interned strings are
freed with their last user.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, TypeVar

T = TypeVar("T")
_intern = sys.intern
#: Longer string values are kept as they are (names, uids, timestamps, condition messages and
#: image references are shorter).
INTERNED_VALUE_LENGTH = 128


def copy_json(value: T) -> T:
    """A deep copy of ``value``: dicts and lists are copied, scalars shared, keys and short
    strings interned."""
    return _copy(value)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {
            (_intern(key) if type(key) is str else key): _copy(item) for key, item in value.items()
        }
    if kind is list:
        return [_copy(item) for item in value]
    if kind is str:
        return _intern(value) if len(value) <= INTERNED_VALUE_LENGTH else value
    if kind in (int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)  # anything else (a mapping view, a tuple): the general way
