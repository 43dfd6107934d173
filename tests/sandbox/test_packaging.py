"""The station in a box is its own distribution: the station's wheel holds none of it and needs
nothing only it uses; its own wheel holds it alone and requires this station's version.
(tests/cli checks that the commands needing it say how to install it when it is missing.)"""

import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from hatchling.builders.wheel import WheelBuilder
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
#: Used by the station in a box only; the station's images must not carry them.
SANDBOX_ONLY = {"matplotlib", "kmock"}


def _project(path: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(path.read_text())["project"]
    return project


def _requirements(project: dict[str, Any]) -> dict[str, Requirement]:
    found = [Requirement(line) for line in project["dependencies"]]
    return {r.name.lower(): r for r in found}


def _wheel(project: Path, out: Path) -> zipfile.ZipFile:
    (built,) = WheelBuilder(str(project)).build(directory=str(out), versions=["standard"])
    return zipfile.ZipFile(built)


def _core_requirements(wheel: zipfile.ZipFile) -> list[Requirement]:
    """Requires-Dist without a marker: what ``pip install`` of the wheel pulls in."""
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    headers = Parser().parsestr(wheel.read(metadata).decode())
    found = [Requirement(line) for line in headers.get_all("Requires-Dist") or []]
    return [r for r in found if r.marker is None]  # extras (test) are not installed by images


@pytest.fixture(scope="module")
def station_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    return _wheel(REPO, tmp_path_factory.mktemp("wheel"))


def test_the_station_wheel_holds_no_station_in_a_box(station_wheel: zipfile.ZipFile) -> None:
    packages = {name.split("/", 1)[0] for name in station_wheel.namelist()}
    assert {"pht_contract", "pht_operator", "pht_station_api", "pht_cli"} <= packages
    assert "pht_sandbox" not in packages


def test_the_station_wheel_needs_nothing_only_the_station_in_a_box_uses(
    station_wheel: zipfile.ZipFile,
) -> None:
    core = _core_requirements(station_wheel)
    assert core, "the wheel lists no dependency at all"
    assert not {r.name.lower() for r in core} & SANDBOX_ONLY


def test_the_station_in_a_box_project_depends_on_this_station_and_its_own_libraries() -> None:
    station = _project(REPO / "pyproject.toml")
    sandbox = _project(REPO / "sandbox" / "pyproject.toml")
    assert sandbox["name"] == "pht-sandbox"
    assert sandbox["version"] == station["version"]
    needs = _requirements(sandbox)
    assert str(needs["pht-station"].specifier) == f"=={station['version']}"
    assert set(needs) >= SANDBOX_ONLY
    assert not SANDBOX_ONLY & set(_requirements(station))


def test_the_station_in_a_box_wheel_holds_it_alone_and_needs_the_station(
    tmp_path: Path,
) -> None:
    wheel = _wheel(REPO / "sandbox", tmp_path)
    packages = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"pht_sandbox"}
    assert "pht_sandbox/emulator/server.py" in wheel.namelist()
    version = _project(REPO / "pyproject.toml")["version"]
    needs = {r.name.lower(): str(r.specifier) for r in _core_requirements(wheel)}
    assert needs["pht-station"] == f"=={version}"
    assert set(needs) >= SANDBOX_ONLY
