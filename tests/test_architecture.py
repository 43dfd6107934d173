"""The allowed import directions (pyproject's import-linter contracts) hold."""

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert f"Contracts: {len(contracts['contracts'])} kept, 0 broken" in result.stdout


def test_no_test_imports_from_a_conftest_module() -> None:
    """Every test folder has a ``conftest.py``; importing one by name picks whichever pytest
    loaded first when the whole suite runs. Shared helpers live in uniquely named modules."""
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "tests").rglob("*.py")
        if path.name != "test_architecture.py"
        and ("from conftest import" in path.read_text() or "import conftest" in path.read_text())
    ]
    assert offenders == [], offenders
