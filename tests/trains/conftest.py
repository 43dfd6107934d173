"""Fixtures for the train SDK and example-train tests: a gateway double and a run's environment."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_double import GatewayDouble, running_gateway_double

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "trains" / "examples"

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
