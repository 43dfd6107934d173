"""checkov for the Dockerfiles, from the chart tests' separate venv (installed if missing)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def checkov() -> Path:
    binary = ROOT / ".tools" / "checkov-venv" / "bin" / "checkov"
    if not binary.exists():
        result = subprocess.run(
            ["bash", str(ROOT / "tools" / "fetch-checkov.sh")],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
    return binary
