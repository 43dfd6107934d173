"""Helpers for the real-cluster tests: the real kubectl and helm against a kubeconfig, waiting."""

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "bin"
CHART = REPO / "charts" / "pht-station"

T = TypeVar("T")


def tool(name: str) -> Path:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: run 'make tools'"
    return path


def run(
    name: str,
    args: list[str],
    kubeconfig: Path,
    timeout: float = 180,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HELM_CACHE_HOME": str(kubeconfig.parent)}
    return subprocess.run(
        [str(tool(name)), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        input=stdin,
        check=False,
    )


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, every: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
