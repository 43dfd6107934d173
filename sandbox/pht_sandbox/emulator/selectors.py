"""Label and field selectors, as list and watch requests carry them."""

from __future__ import annotations

import re

from pht_contract.objects import Obj
from pht_sandbox.emulator.failures import ApiFailure

_REQUIREMENT = re.compile(
    r"\s*(?P<key>!?[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9_.-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*"
)


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def label_selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    """Whether labels satisfy a Kubernetes label selector string."""
    if not selector:
        return True
    for part in _split_selector(selector):
        match = _REQUIREMENT.fullmatch(part)
        if match is None:
            raise ApiFailure(400, "BadRequest", f"unable to parse requirement: {part!r}")
        key = match["key"]
        if match["op"]:
            present = key in labels and labels[key] == match["value"]
            if present == (match["op"] == "!="):
                return False
        elif match["setop"]:
            values = {v.strip() for v in match["values"].split(",")}
            inside = labels.get(key) in values
            if inside != (match["setop"] == "in"):
                return False
        elif key.startswith("!"):
            if key[1:] in labels:
                return False
        elif key not in labels:
            return False
    return True


def field_selector_matches(selector: str | None, obj: Obj) -> bool:
    """Only the ``metadata.name`` and ``metadata.namespace`` field selectors are supported."""
    if not selector:
        return True
    meta = obj.get("metadata", {})
    for part in selector.split(","):
        key, op, value = re.split(r"(!=|==|=)", part.strip(), maxsplit=1)
        field = {"metadata.name": "name", "metadata.namespace": "namespace"}.get(key)
        if field is None:
            raise ApiFailure(400, "BadRequest", f"field label not supported: {key}")
        if (meta.get(field) == value) == (op == "!="):
            return False
    return True
