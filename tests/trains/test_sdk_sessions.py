"""The SDK against a test double of the station's internal listener (127.0.0.1 only)."""

import json
from pathlib import Path

import pytest
from gateway_double import Canned, GatewayDouble, json_answer

from pht_contract.manifests import ResultManifest as ContractManifest
from pht_contract.wire import ProgressReport
from pht_train import (
    ResultManifest,
    RetryPolicy,
    Stage,
    StationError,
    count,
    group,
    statistic,
)
from pht_train.constants import PROGRESS_PATH, RESULT_PATH, SPARQL_PATH
from pht_train.sessions import TrainSession, connect

SELECT = {
    "head": {"vars": ["stage", "days"]},
    "results": {
        "bindings": [
            {
                "stage": {"type": "literal", "value": "IIIa"},
                "days": {
                    "type": "literal",
                    "value": "512",
                    "datatype": "http://www.w3.org/2001/XMLSchema#integer",
                },
            }
        ]
    },
}
RECEIPT = {"uid": "u", "attempt": 1, "digest": "sha256:" + "a" * 64, "sizeBytes": 10}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def session(run_environment: dict[str, str], sleeps: Sleeps) -> TrainSession:
    queries = Path(run_environment["PHT_QUERIES_DIR"])
    (queries / "survival.rq").write_text(
        "SELECT ?stage ?days WHERE { ?p <urn:stage> ?stage ; <urn:days> ?days }"
    )
    train = connect(run_environment, RetryPolicy(attempts=3, backoff_seconds=0.25))
    train.client._sleep = sleeps
    return train


def test_a_named_query_is_posted_by_name_with_the_token(
    session: TrainSession, gateway: GatewayDouble
) -> None:
    gateway.always(SPARQL_PATH, json_answer(200, SELECT))
    result = session.query("survival")
    assert result.rows == ({"stage": "IIIa", "days": 512},)
    (sent,) = gateway.to(SPARQL_PATH)
    assert sent.method == "POST"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["Accept"] == "application/sparql-results+json"
    assert sent.headers["Authorization"] == "Bearer s3cret-token"
    # Only the name travels: the station runs the text approved under it.
    assert sent.body.decode() == "query-name=survival"


def test_run_sparql_still_posts_a_text(session: TrainSession, gateway: GatewayDouble) -> None:
    gateway.always(SPARQL_PATH, json_answer(200, SELECT))
    session.run_sparql("SELECT ?stage ?days WHERE { ?s ?p ?o }")
    (sent,) = gateway.to(SPARQL_PATH)
    assert sent.headers["Content-Type"] == "application/sparql-query"
    assert sent.body.decode().startswith("SELECT ?stage ?days")


def test_progress_is_a_percentage_and_a_stage(
    session: TrainSession, gateway: GatewayDouble
) -> None:
    gateway.always(PROGRESS_PATH, Canned(204, b""))
    session.progress(40, Stage.COMPUTING)
    session.progress(50, "Training")
    bodies = [r.json() for r in gateway.to(PROGRESS_PATH)]
    assert bodies == [{"percent": 40, "stage": "Computing"}, {"percent": 50, "stage": "Training"}]
    for body in bodies:
        ProgressReport.model_validate(body)
    with pytest.raises(ValueError):
        session.progress(101, Stage.DONE)
    with pytest.raises(ValueError):
        session.progress(10, "Thinking about patient 7")
    assert len(gateway.to(PROGRESS_PATH)) == 2


def test_the_uploaded_manifest_is_a_valid_contract_manifest(
    session: TrainSession, gateway: GatewayDouble
) -> None:
    gateway.always(RESULT_PATH, json_answer(200, RECEIPT))
    manifest = ResultManifest()
    manifest.add_table(
        "survival",
        [group("stage"), group("days"), count("at_risk"), statistic("survival")],
        [["IIIa", 365, 40, 0.61], ["IIIb", 365, None, 0.5]],
        cohort_size=80,
    )
    manifest.add_statistic("log_likelihood", -41.5, 80)
    manifest.add_model("weights.json", b'{"w": [1, 2]}', "json")
    manifest.add_message("converged after 4 rounds")
    receipt = session.upload(manifest)
    assert receipt.attempt == 1 and receipt.size_bytes == 10
    (sent,) = gateway.to(RESULT_PATH)
    assert sent.method == "PUT"
    parsed = ContractManifest.model_validate_json(sent.body)
    assert parsed.tables[0].cohort_size == 80
    assert parsed.models[0].size_bytes == len(b'{"w": [1, 2]}')
    assert parsed.wire() == json.loads(sent.body)


def test_a_station_error_surfaces_with_its_reason_and_is_not_retried(
    session: TrainSession, gateway: GatewayDouble, sleeps: Sleeps
) -> None:
    gateway.always(
        SPARQL_PATH,
        json_answer(403, {"reason": "QueryNotApproved", "message": "hash not approved"}),
    )
    with pytest.raises(StationError) as error:
        session.query("survival")
    assert (error.value.reason, error.value.status) == ("QueryNotApproved", 403)
    assert error.value.message == "hash not approved"
    assert len(gateway.to(SPARQL_PATH)) == 1 and sleeps == []


def test_fastapi_style_detail_bodies_are_understood(
    session: TrainSession, gateway: GatewayDouble
) -> None:
    gateway.always(
        SPARQL_PATH,
        json_answer(422, {"detail": {"reason": "RowCapExceeded", "message": "over 10000 rows"}}),
    )
    with pytest.raises(StationError, match="RowCapExceeded"):
        session.query("survival")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, b"<html>no</html>", "Unauthorized"),
        (413, b'{"reason": "not camel case!", "message": "m"}', "PayloadTooLarge"),
        (418, b"", "HttpError"),
    ],
)
def test_without_a_valid_reason_the_status_names_it(
    session: TrainSession, gateway: GatewayDouble, status: int, body: bytes, reason: str
) -> None:
    gateway.always(SPARQL_PATH, Canned(status, body))
    with pytest.raises(StationError) as error:
        session.query("survival")
    assert error.value.reason == reason


def test_server_errors_are_retried_a_bounded_number_of_times(
    session: TrainSession, gateway: GatewayDouble, sleeps: Sleeps
) -> None:
    gateway.always(SPARQL_PATH, json_answer(503, {"reason": "StoreUnavailable", "message": "x"}))
    with pytest.raises(StationError) as error:
        session.query("survival")
    assert error.value.reason == "StoreUnavailable"
    assert len(gateway.to(SPARQL_PATH)) == 3
    assert sleeps == [0.25, 0.5]


def test_a_transient_failure_recovers(
    session: TrainSession, gateway: GatewayDouble, sleeps: Sleeps
) -> None:
    gateway.queue(SPARQL_PATH, Canned(502, b"bad gateway"), json_answer(200, SELECT))
    assert len(session.query("survival")) == 1
    assert len(gateway.to(SPARQL_PATH)) == 2 and sleeps == [0.25]


def test_throttling_honours_retry_after_up_to_a_cap(
    session: TrainSession, gateway: GatewayDouble, sleeps: Sleeps
) -> None:
    gateway.queue(
        SPARQL_PATH,
        json_answer(429, {"reason": "RateLimited", "message": "m"}, **{"Retry-After": "2"}),
        json_answer(429, {"reason": "RateLimited", "message": "m"}, **{"Retry-After": "3600"}),
        json_answer(200, SELECT),
    )
    session.query("survival")
    assert sleeps == [2.0, 10.0]


def test_an_unreachable_station_is_retried_then_reported(
    run_environment: dict[str, str], sleeps: Sleeps, gateway: GatewayDouble
) -> None:
    # A port nobody listens on: the double's own server is shut down first.
    run_environment["PHT_STATION_API_URL"] = "http://127.0.0.1:9"
    train = connect(run_environment, RetryPolicy(attempts=2, backoff_seconds=0.1))
    train.client._sleep = sleeps
    with pytest.raises(StationError) as error:
        train.progress(1, Stage.STARTING)
    assert error.value.reason == "StationUnreachable" and error.value.status is None
    assert sleeps == [0.1]


def test_a_malformed_receipt_is_an_error(session: TrainSession, gateway: GatewayDouble) -> None:
    gateway.always(RESULT_PATH, json_answer(200, {"uid": "u"}))
    with pytest.raises(StationError, match="InvalidResponse"):
        session.upload(ResultManifest())


def test_a_query_timeout_is_not_retried(
    session: TrainSession, gateway: GatewayDouble, sleeps: Sleeps
) -> None:
    gateway.always(SPARQL_PATH, json_answer(504, {"reason": "QueryTimeout", "message": "30 s"}))
    with pytest.raises(StationError, match="QueryTimeout"):
        session.query("survival")
    assert len(gateway.to(SPARQL_PATH)) == 1 and sleeps == []
