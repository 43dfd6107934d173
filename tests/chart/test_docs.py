"""The install guide's examples are executed: each values snippet in docs/install.md renders with
the chart, and every chart file the docs point at exists (docs that rot fail the build)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .rendering import CHART, ROOT, helm_template, run, tool

INSTALL = ROOT / "docs" / "install.md"
TOP_LEVEL_VALUES = set(yaml.safe_load((CHART / "values.yaml").read_text()))


def _values_snippets() -> list[dict[str, Any]]:
    snippets = []
    for block in re.findall(r"```yaml\n(.*?)```", INSTALL.read_text(), flags=re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and set(data) <= TOP_LEVEL_VALUES:
            snippets.append(data)
    return snippets


def test_install_guide_has_values_examples() -> None:
    assert len(_values_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(_values_snippets())))
def test_values_example_renders(index: int, tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(_values_snippets()[index]))
    result = helm_template([path])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("doc", ["install.md", "operations.md"])
def test_chart_paths_in_docs_exist(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    paths = set(re.findall(r"charts/pht-station/[\w./-]*\w", text))
    paths |= {f"charts/pht-station/{p}" for p in re.findall(r"`(ci/[\w.-]+\.yaml)`", text)}
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), f"{doc} mentions {path}"


#: Phrases about how the station was developed rather than how to run it.
NOT_FOR_USERS = re.compile(
    r"this project|project's machines|our machines|development machine|nobody on|\btracker\b"
    r"|reviewer said|\bthe lead\b",
    flags=re.I,
)
OPERATOR_DOCS = ["install.md", "operations.md", "metrics.md", "performance.md"]


@pytest.mark.parametrize("doc", OPERATOR_DOCS)
def test_operator_docs_speak_about_the_product(doc: str) -> None:
    found = NOT_FOR_USERS.findall((ROOT / "docs" / doc).read_text())
    assert not found, f"docs/{doc}: {found}"


def test_chart_texts_speak_about_the_product() -> None:
    for path in [CHART / "README.md", CHART / "Chart.yaml", *CHART.glob("templates/*")]:
        if path.is_file():
            assert not NOT_FOR_USERS.findall(path.read_text()), path.name


def test_install_guide_says_what_was_verified_and_what_to_check_yourself() -> None:
    text = INSTALL.read_text()
    assert "real control plane" in text
    assert "What only your cluster can show" in text
    assert "#verify-that-runs-are-isolated-on-your-cluster" in text


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ({}, "helm test pht-station -n pht-system"),
        ({"networkPolicy.enabled": "false"}, "runs are NOT isolated"),
        ({"ingress.enabled": "true"}, "curl -H 'Accept: text/turtle' https://station.example.org/"),
    ],
)
def test_notes_give_next_steps(sets: dict[str, str], expected: str) -> None:
    args: list[str | Path] = [tool("helm"), "install", "pht-station", CHART, "-n", "pht-system"]
    args += ["--dry-run=client"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = run(args)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert expected in notes
    assert "NetworkPolicy" in notes
