"""`pht demo --cluster real --once`: the demo's story on a real control plane of its own, the
train pod run by the node agent. Bounded: about 100 s on two cores (its own control plane
start, the chart install, one Kaplan–Meier run), 300 s at most."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from realcluster_kube import REPO, TOOLS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(330)]


def test_demo_on_the_real_control_plane_releases_the_result(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pht_cli.main",
            "demo",
            "--cluster",
            "real",
            "--once",
            "--work-dir",
            str(work),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{TOOLS}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        check=False,
    )
    text = done.stdout
    assert done.returncode == 0, text[-4000:] + done.stderr[-3000:]
    assert "REAL Kubernetes control plane" in text
    # Said loudly at start: this machine (root, runc, the images built) isolates train pods.
    assert "TRAIN PODS RUN AS OCI CONTAINERS UNDER RUNC" in text
    assert "pht approve km-survival-by-stage   # bob, a data steward, approves" in text
    assert "ResultReleased=False(AwaitingRelease)" in text
    assert "Succeeded=True(ResultReleased)" in text
    # The node agent ran the train's pod (its log stays with the station), not kwok.
    pod_logs = list((work / "node").glob("pht-*-km-survival-by-stage-*.log"))
    assert len(pod_logs) == 1, pod_logs
    released = json.loads((out / "result.json").read_text())
    (table,) = released["tables"]
    assert table["name"] == "survival_by_stage" and table["cohortSize"] == 422
    # Nothing outlives the demo: no control plane process keeps the work directory open.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(work / "control-plane")], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == "", leftovers.stdout
