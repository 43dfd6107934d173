"""The field reference in docs/api.md, generated from the CRD schemas so it cannot drift."""

import json
from typing import Any

from pht_contract.crds import all_crds

BEGIN = "<!-- BEGIN GENERATED FIELD REFERENCE (pht crds --reference) -->"
END = "<!-- END GENERATED FIELD REFERENCE -->"


def _bounds(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("maxProperties", "max entries"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    if "pattern" in schema and len(schema["pattern"]) <= 60:
        parts.append(f"pattern `{schema['pattern']}`")
    elif "pattern" in schema:
        parts.append("pattern (see CRD)")
    if "x-kubernetes-list-map-keys" in schema:
        parts.append("list-map keyed by " + ", ".join(schema["x-kubernetes-list-map-keys"]))
    return "; ".join(parts)


def _rows(schema: dict[str, Any], path: str, required: bool) -> list[str]:
    kind = schema.get("type", "")
    if kind == "array":
        kind = f"array of {schema['items'].get('type', '')}"
    default = f"`{json.dumps(schema['default'])}`" if "default" in schema else ""
    description = " ".join(str(schema.get("description", "")).split())
    bounds = _bounds(schema).replace("|", "\\|")
    mark = "yes" if required else ""
    rows = [f"| `{path}` | {kind} | {mark} | {default} | {bounds} | {description} |"]
    required_names = set(schema.get("required", []))
    for name, child in (schema.get("properties") or {}).items():
        rows += _rows(child, f"{path}.{name}", name in required_names)
    items = schema.get("items")
    if isinstance(items, dict) and items.get("type") == "object":
        for name, child in (items.get("properties") or {}).items():
            rows += _rows(child, f"{path}[].{name}", name in set(items.get("required", [])))
    return rows


def render_reference() -> str:
    out = [BEGIN]
    for crd in all_crds().values():
        kind = crd["spec"]["names"]["kind"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out.append(f"\n### {kind} (`{crd['metadata']['name']}`)\n")
        out.append("| field | type | required | default | bounds | meaning |")
        out.append("|---|---|---|---|---|---|")
        for section in ("spec", "status"):
            if section in schema["properties"]:
                out += _rows(schema["properties"][section], section, section == "spec")
        rules = []
        for node_path, node in _with_rules(schema, ""):
            for rule in node["x-kubernetes-validations"]:
                rules.append(f"- on `{node_path or '<object>'}`: {rule['message']}")
        if rules:
            out.append("\nCEL rules:\n")
            out += rules
    out.append(END)
    return "\n".join(out) + "\n"


def _with_rules(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)] if "x-kubernetes-validations" in schema else []
    for name, child in (schema.get("properties") or {}).items():
        found += _with_rules(child, f"{path}.{name}" if path else name)
    return found
