"""The console's templates, catalogs and style sheet travel in the station's wheel (which is
what the station API image installs), and both catalogs hold every key the other holds."""

import json
import re
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from hatchling.builders.wheel import WheelBuilder

from pht_station_api.console.i18n import LANGUAGES, catalog

REPO = Path(__file__).resolve().parents[3]
CONSOLE = resources.files("pht_station_api.console")


def test_the_wheel_carries_the_console_files(tmp_path: Path) -> None:
    (built,) = WheelBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"])
    names = set(zipfile.ZipFile(built).namelist())
    prefix = "pht_station_api/console/"
    expected = {
        f"{prefix}templates/{entry.name}" for entry in CONSOLE.joinpath("templates").iterdir()
    }
    expected |= {f"{prefix}locales/{language}.json" for language in LANGUAGES}
    expected.add(f"{prefix}static/console.css")
    assert expected <= names
    assert len(expected) > 10


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_has_every_key(language: str) -> None:
    keys = {key for other in LANGUAGES for key in catalog(other)}
    missing = keys - set(catalog(language))
    assert not missing, f"{language} lacks {sorted(missing)}"
    assert all(value.strip() for value in catalog(language).values())


def test_every_key_the_templates_use_is_in_the_catalogs() -> None:
    used: set[str] = set()
    prefixes: set[str] = set()
    for entry in CONSOLE.joinpath("templates").iterdir():
        text = entry.read_text(encoding="utf-8")
        for key in re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", text):
            (prefixes if key.endswith(".") else used).add(key)
    assert used, "no template uses the catalogs"
    english = set(catalog("en"))
    assert used <= english, sorted(used - english)
    for prefix in prefixes:  # keys built from a value (notices, verdicts, languages)
        assert any(key.startswith(prefix) for key in english), prefix
    for language in LANGUAGES:
        assert f"lang.{language}" in english


def test_catalog_files_are_plain_json_objects_of_strings() -> None:
    for language in LANGUAGES:
        text = CONSOLE.joinpath("locales", f"{language}.json").read_text(encoding="utf-8")
        document = json.loads(text)
        assert isinstance(document, dict)
        assert all(isinstance(v, str) for v in document.values())


def test_every_key_the_code_uses_is_in_the_catalogs() -> None:
    used: set[str] = set()
    for entry in CONSOLE.iterdir():
        if entry.name.endswith(".py"):
            text = entry.read_text(encoding="utf-8")
            found = re.findall(r'"((?:refused|csrf|approval)\.[a-z_]+)"', text)
            used |= {key for key in found if not key.endswith(".html")}
    assert {"refused.may_not", "csrf.other_site", "approval.changed"} <= used
    for language in LANGUAGES:
        assert used <= set(catalog(language)), sorted(used - set(catalog(language)))
