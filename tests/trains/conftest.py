"""Fixtures for the train SDK and example-train tests: a gateway double and a run's environment."""

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from gateway_double import Canned, GatewayDouble, json_answer, running_gateway_double
from trainkit import EXAMPLES, RECEIPT

from pht_contract.manifests import ResultManifest as ContractManifest
from pht_train import TrainSession, run
from pht_train.constants import PROGRESS_PATH, RESULT_PATH, SPARQL_PATH

# The example trains are standalone packages (one per image); make them importable here.
for example in ("cohort-summary", "kaplan-meier", "federated-logreg", "gpu-training-step"):
    path = str(EXAMPLES / example)
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture
def gateway() -> Iterator[GatewayDouble]:
    with running_gateway_double() as double:
        yield double


@pytest.fixture
def run_environment(tmp_path: Path, gateway: GatewayDouble) -> dict[str, str]:
    """The environment a station gives a run, pointing at the gateway double."""
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    queries = tmp_path / "queries"
    queries.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return {
        "PHT_STATION_API_URL": gateway.url,
        "PHT_TOKEN_FILE": str(token),
        "PHT_TRAIN_UID": "0d9c1f5e-2f3b-4b8e-9a61-1c2d3e4f5a6b",
        "PHT_TRAIN_NAME": "km-survival-by-stage",
        "PHT_ATTEMPT": "1",
        "PHT_PARAMETERS": '{"timePoints": [365, 730], "label": "x"}',
        "PHT_QUERIES_DIR": str(queries),
        "PHT_SCRATCH_DIR": str(scratch),
    }


@pytest.fixture
def station_run(run_environment: dict[str, str], gateway: GatewayDouble) -> Callable[..., Any]:
    """Run an example train's algorithm in-process against the gateway double.

    Takes (algorithm, (query name, SPARQL), the gateway's answer, parameters); returns the
    uploaded manifest after checking it against the contract's ResultManifest.
    """

    def run_train(
        algorithm: Callable[[TrainSession], None],
        query: tuple[str, str],
        answer: dict[str, Any],
        parameters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        name, sparql = query
        (Path(run_environment["PHT_QUERIES_DIR"]) / f"{name}.rq").write_text(sparql)
        run_environment["PHT_PARAMETERS"] = json.dumps(parameters or {})
        gateway.always(SPARQL_PATH, json_answer(200, answer))
        gateway.always(PROGRESS_PATH, Canned(204, b""))
        gateway.always(RESULT_PATH, json_answer(200, RECEIPT))
        with pytest.raises(SystemExit) as exit:
            run(algorithm, run_environment)
        assert exit.value.code == 0, "the train failed"
        (upload,) = gateway.to(RESULT_PATH)
        (sent,) = gateway.to(SPARQL_PATH)
        # The train names its query; the station runs the text approved under that name.
        assert parse_qs(sent.body.decode()) == {"query-name": [name]}, "the train must name it"
        ContractManifest.model_validate_json(upload.body)
        document = upload.json()
        assert isinstance(document, dict)
        return document

    return run_train
