"""The train in docs/train-sdk.md works: its code and its query, run as a station would."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cohort_answers import answer
from gateway_double import Canned, GatewayDouble, json_answer
from trainkit import RECEIPT, REPO

from pht_contract.manifests import ResultManifest as ContractManifest
from pht_train.constants import PROGRESS_PATH, RESULT_PATH, SPARQL_PATH

DOC = (REPO / "docs" / "train-sdk.md").read_text()


def block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", DOC, re.DOTALL)
    assert match, f"docs/train-sdk.md has no {language} block"
    return match.group(1)


@pytest.mark.slow
def test_the_documented_train_runs(
    gateway: GatewayDouble, run_environment: dict[str, str], tmp_path: Path
) -> None:
    (query,) = yaml.safe_load(block("yaml"))["spec"]["queries"]
    (Path(run_environment["PHT_QUERIES_DIR"]) / f"{query['name']}.rq").write_text(query["sparql"])
    gateway.always(SPARQL_PATH, json_answer(200, answer(query["sparql"], patients=120)))
    gateway.always(PROGRESS_PATH, Canned(204, b""))
    gateway.always(RESULT_PATH, json_answer(200, RECEIPT))
    script = tmp_path / "train.py"
    script.write_text(block("python"))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**run_environment, "PHT_PARAMETERS": json.dumps({})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (upload,) = gateway.to(RESULT_PATH)
    manifest = ContractManifest.model_validate_json(upload.body)
    (table,) = manifest.tables
    assert table.cohort_size == 120
    assert sum(row[1] for row in table.rows) == 120
