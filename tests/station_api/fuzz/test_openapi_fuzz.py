"""Bad input never 500s: schemathesis drives both listeners of a live ``pht api`` process.

Cases are generated from each listener's own OpenAPI schema (bounded examples per operation)
and sent with credentials (operator, a registered train, a steward) so that requests get past
authentication and reach the parsers, the gateway and the gate.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from livestation import LiveStation, start_station
from schemathesis import GenerationMode
from stationkit import (
    STEWARD_TOKEN,
    bearer,
    example_query,
    make_store,
    operator_headers,
    registration,
)

from pht_contract.wire import SPARQL_PATH, TRAIN_REGISTRATION_PATH

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TRAIN_TOKEN = "fuzzing-train-token"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStation]:
    root = tmp_path_factory.mktemp("live")
    station = start_station(make_store(root / "store", patients=30), root / "state")
    try:
        reg = registration(
            TRAIN_TOKEN,
            [example_query("kaplan-meier")],
            query_mode="AnyReadOnlyQuery",
            queries_per_minute=100_000,
            query_timeout_seconds=5,
        )
        response = httpx.put(
            station.internal + TRAIN_REGISTRATION_PATH.format(uid=reg.uid),
            json=reg.wire(),
            headers=operator_headers(),
        )
        assert response.status_code == 201, response.text
        answer = httpx.get(
            station.internal + SPARQL_PATH,
            params={"query": example_query("kaplan-meier")},
            headers=bearer(TRAIN_TOKEN),
        )
        assert answer.status_code == 200, answer.text
        yield station
    finally:
        station.stop()


EXAMPLES_PER_OPERATION = 12


def _credentials(path: str) -> dict[str, str]:
    if path.startswith(("/internal/v1/trains", "/internal/v1/provenance", "/internal/v1/graphs")):
        return operator_headers()
    if path.startswith("/internal/v1/"):
        return bearer(TRAIN_TOKEN)
    return bearer(STEWARD_TOKEN)


def fuzz_listener(base_url: str) -> list[str]:
    """Send generated (positive and negative) cases to every operation; return 5xx failures."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case: schemathesis.Case) -> None:
                response = case.call(base_url=base_url, headers=_credentials(case.path))
                if response.status_code >= 500 and response.status_code != 504:
                    failures.append(f"{case.method} {case.path}: {response.status_code}")

            try:
                send()
            except Unsatisfiable:
                # Operations without parameters or body have no negative cases to generate.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_internal_listener_never_500s(live: LiveStation) -> None:
    assert fuzz_listener(live.internal) == []


def test_external_listener_never_500s(live: LiveStation) -> None:
    assert fuzz_listener(live.external) == []


def test_the_live_process_still_answers(live: LiveStation, tmp_path: Path) -> None:
    """After the fuzzing, the approved query still answers: nothing was broken or loaded."""
    answer = httpx.get(
        live.internal + SPARQL_PATH,
        params={"query": example_query("kaplan-meier")},
        headers=bearer(TRAIN_TOKEN),
    )
    assert answer.status_code == 200
    assert len(answer.json()["results"]["bindings"]) == 30
