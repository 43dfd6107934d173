"""The CRDs: generated from the models, equal to crds/, structurally valid upstream."""

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pht_contract.crds import all_crds, render
from pht_contract.validation import load_documents

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.33.0"


def test_crds_directory_matches_generator() -> None:
    generated = all_crds()
    on_disk = {p.name for p in (REPO / "crds").glob("*.yaml")}
    assert on_disk == set(generated), "run `pht crds --out crds/`"
    for name, crd in generated.items():
        assert (REPO / "crds" / name).read_text() == render(crd), f"crds/{name} is stale"


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_crd_validates_against_upstream_apiextensions_schema(name: str) -> None:
    kubernetes_validate.validate(all_crds()[name], K8S_VERSION, strict=True)


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of nodes breaking the bounds we require: strings and lists always bounded."""
    bad = []
    kind = schema.get("type")
    exempt = schema.get("format") == "date-time" or path in (".apiVersion", ".kind")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema and not exempt:
        bad.append(path)
    if kind == "array" and "maxItems" not in schema:
        bad.append(path)
    if "type" not in schema:
        bad.append(path + " (no type: not structural)")
    for key, child in (schema.get("properties") or {}).items():
        bad += _walk(child, f"{path}.{key}")
    if "items" in schema:
        bad += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += _walk(schema["additionalProperties"], f"{path}{{}}")
    return bad


def _undescribed(schema: dict[str, Any], path: str = "") -> list[str]:
    """Properties without a description (``kubectl explain`` would show nothing for them)."""
    missing: list[str] = []
    for key, child in (schema.get("properties") or {}).items():
        if path == "" and key == "metadata":
            # the API server forbids a description on the root metadata (ObjectMeta has its own)
            assert child == {"type": "object"}
            continue
        if not str(child.get("description") or "").strip():
            missing.append(f"{path}.{key}")
        missing += _undescribed(child, f"{path}.{key}")
    if "items" in schema:
        missing += _undescribed(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        missing += _undescribed(schema["additionalProperties"], f"{path}{{}}")
    return missing


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_field_has_a_description(name: str) -> None:
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _undescribed(schema) == [], "document these fields in the pydantic models"


def test_a_field_without_a_description_is_found() -> None:
    schema = {"properties": {"spec": {"description": "x", "properties": {"a": {"type": "string"}}}}}
    assert _undescribed(schema) == [".spec.a"]


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_string_and_list_is_bounded(name: str) -> None:
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_train_printer_columns() -> None:
    columns = all_crds()["trains.yaml"]["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [c["name"] for c in columns if not c.get("priority")]
    wide = [c["name"] for c in columns if c.get("priority")]
    assert {"Summary", "Reason", "GPUs", "Age", "Duration"} <= set(default)
    assert {"Started", "Completed", "Image", "Organisation"} <= set(wide)
    by_name = {c["name"]: c for c in columns}
    # kubectl humanises date columns ("5m") like Age
    assert by_name["Started"]["type"] == by_name["Completed"]["type"] == "date"
    assert "Succeeded" in by_name["Reason"]["jsonPath"]


def test_examples_validate_against_crd_openapi_schema() -> None:
    schemas = {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in all_crds().values()
    }
    count = 0
    for path in sorted((REPO / "examples").glob("*/*.yaml")):
        for doc in load_documents(path):
            jsonschema.validate(doc, schemas[doc["kind"]])
            count += 1
    assert count >= 5


def test_crd_schema_refuses_what_the_models_refuse() -> None:
    schema = all_crds()["trains.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bad = yaml.safe_load((Path(__file__).parent / "bad" / "too-many-gpus.yaml").read_text())
    bad["spec"]["resources"]["gpu"] = 99
    with pytest.raises(jsonschema.ValidationError, match="99"):
        jsonschema.validate(bad, schema)


def test_api_reference_in_docs_is_current() -> None:
    from pht_contract.reference import render_reference

    assert render_reference() in (REPO / "docs" / "api.md").read_text(), (
        "docs/api.md is stale: regenerate its field tables with `pht crds --reference`"
    )
