"""Each example train's entrypoint runs as a process, as a station starts it, and uploads."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cohort_answers import answer, manifest_query
from gateway_double import Canned, GatewayDouble, json_answer
from trainkit import EXAMPLES, RECEIPT

from pht_contract.manifests import ResultManifest as ContractManifest
from pht_train import FAILURE_PREFIX
from pht_train.constants import PROGRESS_PATH, RESULT_PATH, SPARQL_PATH

#: (example folder, module for ``python -m``, manifest, parameters)
ENTRYPOINTS = [
    ("cohort-summary", "cohort_summary", "cohort-summary.yaml", {}),
    ("kaplan-meier", "kaplan_meier", "kaplan-meier.yaml", {"timePoints": [365, 730]}),
    ("federated-logreg", "federated_logreg", "federated-logreg.yaml", {"coefficients": {}}),
    ("gpu-training-step", "gpu_training_step", "gpu-training-step.yaml", {"epochs": 3}),
]


def start(
    folder: str, module: str, env: dict[str, str], parameters: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    scratch = env["PHT_SCRATCH_DIR"]
    environment = {
        **env,
        "PHT_PARAMETERS": json.dumps(parameters),
        "HOME": scratch,
        "TMPDIR": scratch,
        # Where the image puts the train's code; plus whatever this test run can import
        # (PyTorch where it is installed outside the project's environment).
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES / folder), *sys.path]),
    }
    return subprocess.run(
        [sys.executable, "-m", module],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("folder", "module", "manifest", "parameters"), ENTRYPOINTS)
def test_the_entrypoint_runs_and_uploads(
    gateway: GatewayDouble,
    run_environment: dict[str, str],
    folder: str,
    module: str,
    manifest: str,
    parameters: dict[str, object],
) -> None:
    if module == "gpu_training_step" and importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed")
    name, sparql = manifest_query(manifest)
    (Path(run_environment["PHT_QUERIES_DIR"]) / f"{name}.rq").write_text(sparql)
    gateway.always(SPARQL_PATH, json_answer(200, answer(sparql, patients=200)))
    gateway.always(PROGRESS_PATH, Canned(204, b""))
    gateway.always(RESULT_PATH, json_answer(200, RECEIPT))
    done = start(folder, module, run_environment, parameters)
    assert done.returncode == 0, done.stderr
    (upload,) = gateway.to(RESULT_PATH)
    ContractManifest.model_validate_json(upload.body)
    stages = [r.json()["stage"] for r in gateway.to(PROGRESS_PATH)]
    assert stages[0] == "Starting" and stages[-2:] == ["Uploading", "Done"]


@pytest.mark.slow
def test_a_refused_query_ends_the_process_with_the_stations_reason(
    gateway: GatewayDouble, run_environment: dict[str, str]
) -> None:
    name, sparql = manifest_query("kaplan-meier.yaml")
    (Path(run_environment["PHT_QUERIES_DIR"]) / f"{name}.rq").write_text(sparql)
    gateway.always(PROGRESS_PATH, Canned(204, b""))
    gateway.always(
        SPARQL_PATH, json_answer(403, {"reason": "QueryNotApproved", "message": "not approved"})
    )
    done = start("kaplan-meier", "kaplan_meier", run_environment, {})
    assert done.returncode == 3
    assert done.stderr.splitlines()[-1] == FAILURE_PREFIX + "QueryNotApproved"
    assert gateway.to(RESULT_PATH) == []
