"""Good examples validate; each bad manifest is refused with the right field path and reason."""

import subprocess
import sys
from pathlib import Path

import pytest

from pht_contract.validation import find_policy, load_documents, validate_object

REPO = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO / "examples" / "policies" / "station-policy.yaml"
GOOD = sorted((REPO / "examples").glob("*/*.yaml"))
BAD = sorted((Path(__file__).parent / "bad").glob("*.yaml"))


def _expectation(path: Path) -> list[str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: '"
    return [part.strip() for part in first.removeprefix("# expect: ").split("|")]


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    found = find_policy(load_documents(POLICY_FILE))
    assert found is not None
    return found


def test_there_are_good_and_bad_examples() -> None:
    kinds = {doc["kind"] for path in GOOD for doc in load_documents(path)}
    assert kinds == {"Train", "StationPolicy", "TrainApproval"}
    assert len(BAD) >= 10


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_examples_validate(path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    for doc in load_documents(path):
        assert validate_object(doc, policy) == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_manifests_are_refused_with_field_path(path: Path, policy) -> None:  # type: ignore[no-untyped-def]
    field, *fragments = _expectation(path)
    (doc,) = load_documents(path)
    problems = validate_object(doc, policy)
    matching = [p for p in problems if p.path == field]
    assert matching, f"expected a problem at {field}, got {[str(p) for p in problems]}"
    text = " ".join(str(p) for p in matching)
    for fragment in fragments:
        assert fragment in text


def test_cli_accepts_good_examples() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pht_cli.main",
            "validate",
            "--policy",
            str(POLICY_FILE),
            *map(str, GOOD),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": valid") == sum(len(load_documents(p)) for p in GOOD)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_cli_refuses_each_bad_manifest_with_its_field_path(path: Path) -> None:
    field, *_ = _expectation(path)
    result = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "validate", "--policy", str(POLICY_FILE), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f": {field}: " in result.stdout


def test_spec_edit_after_approval_is_refused_but_suspend_is_allowed(km_train) -> None:  # type: ignore[no-untyped-def]
    old = km_train
    edited = {**old, "spec": {**old["spec"], "resources": {"cpu": "2", "memory": "2Gi"}}}
    problems = validate_object(edited, None, old)
    assert [p.path for p in problems] == ["spec"]
    assert "immutable" in problems[0].message
    suspended = {**old, "spec": {**old["spec"], "suspend": True}}
    assert validate_object(suspended, None, old) == []


def test_cli_refuses_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    result = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "validate", str(empty)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no objects" in result.stderr
