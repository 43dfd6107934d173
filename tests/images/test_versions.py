"""One version for the station: pyproject.toml's. The installed metadata, the chart's appVersion,
the image tags the chart pulls and the tags the Dockerfiles document all follow it."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pht-station"


@pytest.fixture(scope="module")
def version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = project["version"]
    assert isinstance(found, str) and re.fullmatch(r"\d+\.\d+\.\d+(\S*)", found)
    return found


def test_the_installed_station_reports_the_pyproject_version(version: str) -> None:
    assert importlib.metadata.version("pht-station") == version


def test_the_chart_deploys_the_pyproject_version(version: str) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert str(chart["appVersion"]) == version


@pytest.mark.parametrize("component", ["operator", "stationApi"])
def test_the_chart_pulls_images_tagged_with_the_pyproject_version(
    version: str, component: str
) -> None:
    image = yaml.safe_load((CHART / "values.yaml").read_text())[component]["image"]
    assert str(image["tag"]) in ("", version), "an empty tag means the chart's appVersion"


@pytest.mark.parametrize("image", ["operator", "station-api"])
def test_the_documented_image_build_tags_the_pyproject_version(version: str, image: str) -> None:
    text = (ROOT / image / "Dockerfile").read_text()
    tags = re.findall(rf"ghcr\.io/pht-station/{image}:(\S+)", text)
    assert tags and set(tags) == {version}
