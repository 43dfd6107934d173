"""``kubectl pht …`` runs the same CLI through the ``kubectl-pht`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_kit import TRAINS_PATH, Recorder, train, train_list, write_kubeconfig

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
PLUGIN = Path(sys.executable).parent / "kubectl-pht"


@pytest.mark.skipif(not KUBECTL.is_file(), reason="needs kubectl (make tools)")
@pytest.mark.skipif(not PLUGIN.is_file(), reason="needs the kubectl-pht entry point (make setup)")
def test_kubectl_runs_the_plugin_with_global_flags(server: Recorder, tmp_path: Path) -> None:
    server.answer(
        "GET",
        TRAINS_PATH.format(ns="ns9"),
        200,
        train_list(train("ns9", "km-kubectl", "AwaitingApproval")),
    )
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, user={"token": "kubectl-user"})
    env = {**os.environ, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(KUBECTL), "pht", "--kubeconfig", str(config), "-n", "ns9", "pending", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"name": "km-kubectl"' in result.stdout
    assert server.seen[0].authorization == "Bearer kubectl-user"
    help_text = subprocess.run(
        [str(KUBECTL), "pht", "--help"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert help_text.startswith("usage: kubectl pht")
