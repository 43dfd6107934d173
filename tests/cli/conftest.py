"""Fixtures for the CLI tests: no test reads the user's own kubeconfig or token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_kit import Recorder, serving


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("PHT_TOKEN", raising=False)
    monkeypatch.delenv("PHT_URL", raising=False)


@pytest.fixture
def server() -> Iterator[Recorder]:
    with serving() as recorder:
        yield recorder
