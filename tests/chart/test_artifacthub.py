"""The chart's Artifact Hub metadata says what the chart really ships: the images it runs with
its default values, every CRD it installs (with examples a real API server would admit), and an
icon that exists in the repository at the address Chart.yaml gives."""

import re
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml

from pht_contract.validation import validate_object

from .rendering import CHART, ROOT

CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text())
ANNOTATIONS: dict[str, str] = CHART_YAML["annotations"]
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
LIST_ANNOTATIONS = [
    "artifacthub.io/images",
    "artifacthub.io/crds",
    "artifacthub.io/crdsExamples",
    "artifacthub.io/links",
]


def _annotation(name: str) -> list[dict[str, Any]]:
    parsed = yaml.safe_load(ANNOTATIONS[name])
    assert isinstance(parsed, list), f"{name} must be a YAML list"
    return parsed


def _crds() -> dict[str, dict[str, Any]]:
    crds = [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml"))]
    return {crd["spec"]["names"]["kind"]: crd for crd in crds}


def _default_image(component: str) -> str:
    image = VALUES[component]["image"]
    tag = image["tag"] or CHART_YAML["appVersion"]
    return f"{image['registry']}/{image['repository']}:{tag}"


@pytest.mark.parametrize("name", LIST_ANNOTATIONS)
def test_list_annotations_are_yaml_lists(name: str) -> None:
    assert _annotation(name)


def test_images_are_the_images_of_the_default_values() -> None:
    named = {entry["image"] for entry in _annotation("artifacthub.io/images")}
    assert named == {_default_image("operator"), _default_image("stationApi")}


def test_every_crd_of_the_chart_is_listed_with_a_description() -> None:
    listed = {entry["kind"]: entry for entry in _annotation("artifacthub.io/crds")}
    crds = _crds()
    assert set(listed) == set(crds)
    for kind, entry in listed.items():
        crd = crds[kind]
        assert entry["name"] == crd["metadata"]["name"]
        assert entry["version"] in {v["name"] for v in crd["spec"]["versions"]}
        assert len(entry["description"]) > 40, kind


def test_crd_examples_cover_every_crd_and_are_valid() -> None:
    examples = _annotation("artifacthub.io/crdsExamples")
    crds = _crds()
    assert {e["kind"] for e in examples} == set(crds)
    for example in examples:
        schema = crds[example["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.validate(example, schema)
        assert validate_object(example) == [], example["kind"]


def test_links_and_license() -> None:
    assert ANNOTATIONS["artifacthub.io/license"] == "Apache-2.0"
    home = CHART_YAML["home"]
    for link in _annotation("artifacthub.io/links"):
        assert link["url"].startswith(f"{home}/blob/main/"), link
        assert (ROOT / link["url"].removeprefix(f"{home}/blob/main/")).is_file(), link
    assert CHART_YAML["maintainers"]


def test_icon_is_an_svg_in_the_repository_at_the_charts_home() -> None:
    match = re.fullmatch(
        r"https://raw\.githubusercontent\.com/(?P<repo>[\w.-]+/[\w.-]+)/main/(?P<path>.+\.svg)",
        CHART_YAML["icon"],
    )
    assert match, CHART_YAML["icon"]
    assert CHART_YAML["home"] == f"https://github.com/{match['repo']}"
    assert f"https://github.com/{match['repo']}" in CHART_YAML["sources"]
    root = ElementTree.parse(ROOT / match["path"]).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox")
