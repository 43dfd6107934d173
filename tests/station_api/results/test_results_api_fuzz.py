"""Schemathesis against the result, provenance and steward routes: bad input never 500s.

Requests carry valid credentials (a registered train's token, the operator's credential, a
steward's local identity) so generated bodies and paths reach the handlers instead of stopping
at authentication.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from stationkit import OPERATOR_TOKEN, STEWARD_TOKEN, registration, station_settings

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.state import build_state

TRAIN_TOKEN = "fuzzing-train-token"

_state_dir = Path(tempfile.mkdtemp(prefix="pht-results-fuzz-"))
atexit.register(shutil.rmtree, _state_dir, True)
# The data store is never started: these routes do not query it.
_state = build_state(station_settings(_state_dir / "unused-store", _state_dir))
_state.registry.register(registration(TRAIN_TOKEN))

internal = schemathesis.openapi.from_asgi("/openapi.json", create_internal_app(_state)).include(
    path_regex=r"^/internal/v1/(result|trains/\{uid\}/(state|completion)|provenance)$"
)
external = schemathesis.openapi.from_asgi("/openapi.json", create_external_app(_state)).include(
    path_regex=r"^/(stewards|results)/"
)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@internal.parametrize()
@FUZZ
def test_internal_routes_never_fail(case: schemathesis.Case) -> None:
    token = TRAIN_TOKEN if case.path.endswith("/result") else OPERATOR_TOKEN
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
    )


@external.parametrize()
@FUZZ
def test_steward_routes_never_fail(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {STEWARD_TOKEN}"}, checks=[not_a_server_error]
    )
