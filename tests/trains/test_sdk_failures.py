"""A run ends with a CamelCase reason on stderr and a non-zero exit, never with data."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from gateway_double import Canned, GatewayDouble, json_answer

from pht_train import FAILURE_EXIT_CODE, FAILURE_PREFIX, TrainSession, fail, run
from pht_train.constants import PROGRESS_PATH, SPARQL_PATH


def test_fail_writes_the_reason_and_exits(tmp_path: Path) -> None:
    stderr = io.StringIO()
    log = tmp_path / "termination-log"
    log.write_text("")
    with pytest.raises(SystemExit) as exit:
        fail("TooFewPatients", stderr=stderr, termination_log=log)
    assert exit.value.code == FAILURE_EXIT_CODE
    assert stderr.getvalue() == FAILURE_PREFIX + "TooFewPatients\n"
    assert log.read_text() == "TooFewPatients"


@pytest.mark.parametrize("reason", ["patient LUNG1-001 has no stage", "x" * 65, "", "Bad Reason"])
def test_a_reason_that_is_not_a_word_is_replaced(reason: str, tmp_path: Path) -> None:
    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        fail(reason, stderr=stderr, termination_log=tmp_path / "absent")
    assert stderr.getvalue() == FAILURE_PREFIX + "InvalidFailureReason\n"
    assert not (tmp_path / "absent").exists()


def test_run_reports_start_and_done(
    gateway: GatewayDouble, run_environment: dict[str, str]
) -> None:
    gateway.always(PROGRESS_PATH, Canned(204, b""))
    seen: list[str] = []

    def algorithm(train: TrainSession) -> None:
        seen.append(train.environment.train_name)

    with pytest.raises(SystemExit) as exit:
        run(algorithm, run_environment)
    assert exit.value.code == 0
    assert seen == ["km-survival-by-stage"]
    stages = [r.json()["stage"] for r in gateway.to(PROGRESS_PATH)]
    assert stages == ["Starting", "Done"]


def test_run_turns_station_errors_into_their_reason(
    gateway: GatewayDouble, run_environment: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.always(PROGRESS_PATH, Canned(204, b""))
    gateway.always(SPARQL_PATH, json_answer(400, {"reason": "GraphNotAllowed", "message": "m"}))

    def algorithm(train: TrainSession) -> None:
        train.run_sparql("SELECT * FROM <urn:other> WHERE { ?s ?p ?o }")

    with pytest.raises(SystemExit) as exit:
        run(algorithm, run_environment)
    assert exit.value.code == FAILURE_EXIT_CODE
    assert capsys.readouterr().err.splitlines()[-1] == FAILURE_PREFIX + "GraphNotAllowed"


def test_an_unexpected_exception_never_shows_its_message(
    gateway: GatewayDouble, run_environment: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.always(PROGRESS_PATH, Canned(204, b""))

    def algorithm(train: TrainSession) -> None:
        raise ValueError("patient LUNG1-042 aged 71 has an odd stage")

    with pytest.raises(SystemExit) as exit:
        run(algorithm, run_environment)
    assert exit.value.code == FAILURE_EXIT_CODE
    err = capsys.readouterr().err
    assert "LUNG1" not in err and "71" not in err
    assert err.splitlines()[-1] == FAILURE_PREFIX + "AlgorithmError"


def test_outside_a_station_the_run_fails_with_invalid_environment(tmp_path: Path) -> None:
    code = "from pht_train import run; run(lambda train: None)"
    done = subprocess.run(
        [sys.executable, "-c", code], env={}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == FAILURE_EXIT_CODE
    assert done.stderr.splitlines()[-1] == FAILURE_PREFIX + "InvalidEnvironment"
    assert "PHT_STATION_API_URL" in done.stderr


def test_an_algorithm_may_fail_with_its_own_reason(
    gateway: GatewayDouble, run_environment: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.always(PROGRESS_PATH, Canned(204, b""))

    def algorithm(train: TrainSession) -> None:
        fail("TooFewPatients")

    with pytest.raises(SystemExit) as exit:
        run(algorithm, run_environment)
    assert exit.value.code == FAILURE_EXIT_CODE
    assert capsys.readouterr().err.splitlines()[-1] == FAILURE_PREFIX + "TooFewPatients"
    assert [r.json()["stage"] for r in gateway.to(PROGRESS_PATH)] == ["Starting"]
