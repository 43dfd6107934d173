"""Shared test helpers: repository paths and example loading."""

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def example_policy() -> dict[str, Any]:
    return load_yaml(EXAMPLES / "policies" / "station-policy.yaml")


@pytest.fixture
def km_train() -> dict[str, Any]:
    return load_yaml(EXAMPLES / "trains" / "kaplan-meier.yaml")


SLOW_TIMEOUT_SECONDS = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow (end-to-end) tests get a longer per-test timeout unless they set their own."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_SECONDS))
