"""`pht dev cluster`: a developer's control plane by hand, which never outlives the command."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def components_of(workdir: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in listing.stdout.splitlines() if workdir in line]


def test_dev_cluster_starts_reports_and_leaves_nothing_running(tmp_path: Path) -> None:
    workdir = str(tmp_path / "plane")
    command = [sys.executable, "-m", "pht_cli.main", "dev", "cluster", "--once"]
    done = subprocess.run(
        [*command, "--work-dir", workdir], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "control plane ready in" in done.stdout
    assert "admin" in done.stdout and "steward" in done.stdout
    assert components_of(workdir) == []
    assert Path(workdir, "kubeconfigs", "admin.yaml").exists()  # a named folder is kept


def test_a_closed_output_pipe_still_stops_every_component(tmp_path: Path) -> None:
    workdir = str(tmp_path / "piped")
    reader = subprocess.Popen(
        [sys.executable, "-m", "pht_cli.main", "dev", "cluster", "--once", "--work-dir", workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert reader.stdout is not None
    reader.stdout.readline()  # the first line, then the reader goes away like `| head -1`
    reader.stdout.close()
    reader.wait(timeout=240)
    assert components_of(workdir) == []
