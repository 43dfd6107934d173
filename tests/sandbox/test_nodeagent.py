"""The node agent's kubelet contract (pod status as a kubelet writes it) and `pht demo --cluster
real` without a built control plane. The agent against a real API server: tests/realcluster."""

import subprocess
import sys
from pathlib import Path

import pytest

from pht_contract.objects import Obj
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
from pht_sandbox.podruntime import ProcessRuntime

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
