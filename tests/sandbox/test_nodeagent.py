"""The node agent's kubelet contract (pod status as a kubelet writes it) and `pht demo --cluster
real` without a built control plane. The agent against a real API server: tests/realcluster."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pht_contract.objects import Obj
from pht_contract.trainfailures import TERMINATION_MESSAGE_MAX_BYTES
from pht_sandbox.bundledtrains import SDK_DIR, BundledTrain
from pht_sandbox.nodeagent import (
    KILLED_EXIT_CODE,
    RUNTIME_LABEL,
    NodeCapacity,
    exit_reason,
    node_object,
    node_status,
    running_status,
    terminated_status,
    waiting_status,
)
from pht_sandbox.podruntime import (
    PodLaunch,
    ProcessRuntime,
    reason_from_log,
    termination_message,
)

REPO = Path(__file__).resolve().parents[2]


def a_pod() -> Obj:
    return {
        "metadata": {"name": "run-abcde", "namespace": "pht-runs", "uid": "u-1"},
        "spec": {"containers": [{"name": "train", "image": "ghcr.io/pht-station/trains/x@sha"}]},
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [(0, (0, "Completed")), (1, (1, "Error")), (3, (3, "Error")), (-9, (137, "Error"))],
)
def test_a_process_return_code_becomes_a_containers_exit_code_and_reason(
    code: int, expected: tuple[int, str]
) -> None:
    assert exit_reason(code) == expected


def test_a_pod_ends_succeeded_only_on_exit_code_zero() -> None:
    ok = terminated_status(a_pod(), "2026-01-01T00:00:00Z", 0, "Completed")
    failed = terminated_status(a_pod(), "2026-01-01T00:00:00Z", 1, "Error")
    assert ok["phase"] == "Succeeded" and failed["phase"] == "Failed"
    (container,) = failed["containerStatuses"]
    assert container["state"]["terminated"]["exitCode"] == 1
    assert container["state"]["terminated"]["reason"] == "Error"
    assert container["ready"] is False
    assert {c["type"]: c["status"] for c in failed["conditions"]}["Ready"] == "False"


def test_a_pod_killed_by_its_deadline_says_so_as_a_kubelet_does() -> None:
    status = terminated_status(
        a_pod(), "2026-01-01T00:00:00Z", KILLED_EXIT_CODE, "Error", "DeadlineExceeded", "late"
    )
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_a_failed_container_carries_its_termination_message() -> None:
    failed = terminated_status(a_pod(), "2026-01-01T00:00:00Z", 3, "Error", message="NoMatch")
    assert failed["containerStatuses"][0]["state"]["terminated"]["message"] == "NoMatch"
    assert "message" not in failed  # the pod's own message is the node's, not the train's
    ok = terminated_status(a_pod(), "2026-01-01T00:00:00Z", 0, "Completed")
    assert "message" not in ok["containerStatuses"][0]["state"]["terminated"]


def _process_launch(tmp_path: Path, source: str) -> PodLaunch:
    package = tmp_path / "train" / "failing"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(source)
    train = BundledTrain("failing", tmp_path / "train", "failing")
    env = {"PYTHONPATH": f"{tmp_path / 'train'}:{SDK_DIR}", "HOME": str(tmp_path)}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return PodLaunch(train, {"name": "train", "image": "x"}, env, run_dir, 60.0)


def test_a_local_process_gives_the_reason_of_its_last_failure_line(tmp_path: Path) -> None:
    # stdout flushed at exit comes after the SDK's stderr line: the reason is still found.
    source = "from pht_train import fail\nprint('done computing')\nfail('TooFewPatients')\n"
    launch = _process_launch(tmp_path, source)
    assert asyncio.run(ProcessRuntime().run(launch)) == 3
    assert "pht-train-failure: TooFewPatients" in launch.log.read_text()
    assert termination_message(launch) == "TooFewPatients"


def test_a_local_process_that_succeeds_or_gives_no_reason_has_no_message(tmp_path: Path) -> None:
    launch = _process_launch(tmp_path, "raise SystemExit(1)\n")
    assert asyncio.run(ProcessRuntime().run(launch)) == 1
    assert termination_message(launch) == ""
    fine = _process_launch(tmp_path / "ok", "print('pht-train-failure: Anything')\n")
    assert asyncio.run(ProcessRuntime().run(fine)) == 0
    assert termination_message(fine) == ""  # only a failed container falls back to its log


def test_only_the_logs_last_4096_bytes_are_read_for_a_reason(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("pht-train-failure: InvalidParameters\n" + "x" * TERMINATION_MESSAGE_MAX_BYTES)
    assert reason_from_log(log) == ""
    log.write_text("pht-train-failure: " + "A" * 2_000_000 + "\n")
    assert reason_from_log(log) == ""
    log.write_text("noise\npht-train-failure: Old\npht-train-failure: New\nstdout\n")
    assert reason_from_log(log) == "New"
    assert reason_from_log(tmp_path / "missing.log") == ""


def test_a_termination_message_is_read_up_to_the_kubelets_cap(tmp_path: Path) -> None:
    launch = PodLaunch(None, {}, {}, tmp_path, 1.0)
    assert termination_message(launch) == ""
    launch.termination_log.write_bytes(b"\xff" + b"y" * (2 * 1024 * 1024))
    message = termination_message(launch)
    assert len(message) == TERMINATION_MESSAGE_MAX_BYTES and message.startswith("\ufffd")


def test_a_link_or_a_pipe_in_place_of_the_termination_log_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("InvalidParameters")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    launch = PodLaunch(None, {}, {}, run_dir, 1.0)
    launch.termination_log.symlink_to(elsewhere)
    assert termination_message(launch) == ""
    launch.termination_log.unlink()
    os.mkfifo(launch.termination_log)
    assert termination_message(launch) == ""  # and it did not wait for a writer


def test_a_local_process_does_not_write_through_a_link_it_planted(tmp_path: Path) -> None:
    source = (
        "import os\n"
        "os.symlink(os.environ['VICTIM'], os.path.join(os.environ['RUN_DIR'], 'termination-log'))\n"
        "from pht_train import fail\nfail('TooFewPatients')\n"
    )
    launch = _process_launch(tmp_path, source)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    launch.env.update(VICTIM=str(victim), RUN_DIR=str(launch.run_dir))
    assert asyncio.run(ProcessRuntime().run(launch)) == 3
    assert victim.read_text() == "keep"
    assert termination_message(launch) == "TooFewPatients"


def test_running_and_waiting_pods() -> None:
    running = running_status(a_pod(), "2026-01-01T00:00:00Z")
    assert running["phase"] == "Running" and running["startTime"] == "2026-01-01T00:00:00Z"
    assert running["containerStatuses"][0]["state"] == {
        "running": {"startedAt": "2026-01-01T00:00:00Z"}
    }
    waiting = waiting_status(a_pod(), "ErrImagePull", "not a bundled train")
    assert waiting["phase"] == "Pending"
    assert waiting["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"


def test_the_node_says_which_runtime_runs_its_pods_and_is_ready() -> None:
    node = node_object("station-node-0", "process")
    assert node["metadata"]["labels"][RUNTIME_LABEL] == "process"
    assert "kwok.x-k8s.io/node" not in (node["metadata"].get("annotations") or {})
    status = node_status(NodeCapacity(cpu="4"))
    assert status["allocatable"]["cpu"] == "4"
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True" and ready["MemoryPressure"] == "False"


def test_the_process_runtime_says_it_isolates_nothing() -> None:
    assert "WITHOUT CONTAINER ISOLATION" in ProcessRuntime.isolation


def test_demo_on_a_real_cluster_without_binaries_says_how_to_build_them(tmp_path: Path) -> None:
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "demo", "--cluster", "real", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PHT_CONTROL_PLANE_BIN": str(empty), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "make tools" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / ".demo").exists()  # nothing started


def test_the_federated_demo_refuses_a_real_cluster_instead_of_ignoring_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "demo", "--cluster", "real", "federated"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == "error: the federated demo runs on the emulator only"
