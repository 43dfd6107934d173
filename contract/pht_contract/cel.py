"""Offline evaluation of the CRDs' CEL rules (cel-python), as the API server would run them.

Rules are found by walking the CRD schema alongside the object. Transition rules (those that
mention ``oldSelf``) run only when an old object is given, as in Kubernetes. Rules that use
Kubernetes-only CEL libraries would not compile here; ours use none (docs/api.md).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import celpy


@dataclass(frozen=True)
class CelFailure:
    path: str
    rule: str
    message: str


_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def _program(rule: str) -> Any:
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _ENV.program(_ENV.compile(rule))
    return _PROGRAMS[rule]


def evaluate_rule(rule: str, value: Any, old: Any | None = None) -> bool:
    activation = {"self": celpy.json_to_cel(value)}  # type: ignore[attr-defined]
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)  # type: ignore[attr-defined]
    result = _program(rule).evaluate(activation)
    if isinstance(result, Exception):
        raise result
    return bool(result)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _walk(schema: dict[str, Any], value: Any, old: Any | None, path: str) -> Iterator[CelFailure]:
    for rule in schema.get("x-kubernetes-validations", []):
        text = rule["rule"]
        is_transition = "oldSelf" in text
        if is_transition and old is None:
            continue
        try:
            ok = evaluate_rule(text, value, old if is_transition else None)
        except Exception as exc:  # a rule error rejects the object, as in the API server
            yield CelFailure(path or "<root>", text, f"rule could not be evaluated: {exc}")
            continue
        if not ok:
            yield CelFailure(path or "<root>", text, rule.get("message", text))
    if isinstance(value, dict):
        for key, child in (schema.get("properties") or {}).items():
            if key in value:
                old_child = old.get(key) if isinstance(old, dict) else None
                yield from _walk(child, value[key], old_child, _join(path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            # Kubernetes correlates list items for transition rules only in map lists.
            yield from _walk(schema["items"], item, None, _join(path, index))


def check(
    crd_schema: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[CelFailure]:
    """All CEL rules of ``crd_schema`` (an openAPIV3Schema) that ``obj`` breaks."""
    return list(_walk(crd_schema, obj, old, ""))
