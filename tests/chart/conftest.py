"""Fixtures for the chart tests: each CI profile rendered once, and checkov from its own venv."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .rendering import CHECKOV_VENV, PROFILES, ROOT, documents, render_profile, run


@pytest.fixture(params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def rendered(profile: str) -> list[dict[str, Any]]:
    return documents(render_profile(profile))


@pytest.fixture
def rendered_text(profile: str) -> str:
    return render_profile(profile)


@pytest.fixture
def render() -> Callable[[str], list[dict[str, Any]]]:
    return lambda profile: documents(render_profile(profile))


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov lives in its own venv (its pins clash with the project's); install it if missing."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        result = run(["bash", ROOT / "tools" / "fetch-checkov.sh"], timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
    return binary
