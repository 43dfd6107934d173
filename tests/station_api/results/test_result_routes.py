"""Results end to end through both listeners of a real station (embedded Oxigraph, real gate).

A train queries (so the audit knows its cohort), uploads, the operator completes the run, and
stewards and requesters act through the external listener with local identities.
"""

import base64
import csv
import hashlib
import io
import json
import pickle
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from prometheus_client import generate_latest
from stationkit import (
    COHORT_PATIENTS,
    bearer,
    client_for,
    current_review,
    example_query,
    operator_headers,
    register,
    registration,
    started_station,
    station_settings,
)

from pht_contract.wire import (
    PROVENANCE_PATH,
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    TrainRegistration,
)
from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.results.archive import MAX_UPLOADS
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
STEWARD, REQUESTER, OUTSIDER = "steward-token", "requester-token", "outsider-token"
DONE = {"jobSucceeded": True, "reason": "RunCompleted"}
#: Stage labels the example policy lists as releasable.
STAGES = ["I", "II", "IIIa", "IIIb"]
REVIEWED_IMAGE = "ghcr.io/pht-station/trains/kaplan-meier:0.1.0@sha256:" + "a" * 64


def _identities(directory: Path) -> Path:
    def user(name: str, token: str, groups: list[str]) -> dict[str, Any]:
        return {
            "username": name,
            "groups": groups,
            "tokenSha256": hashlib.sha256(token.encode()).hexdigest(),
        }

    path = directory / "people.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    user("steward-sam", STEWARD, ["pht-stewards"]),
                    user("dr-alice", REQUESTER, ["researchers"]),
                    user("mallory", OUTSIDER, ["others"]),
                ],
                "rules": [
                    {"groups": ["pht-stewards"], "verbs": ["release", "get"]},
                    {"groups": ["researchers"], "verbs": ["get"], "namespaces": ["pht-requests"]},
                ],
            }
        )
    )
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results_station(
    cohort_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    state_dir = tmp_path_factory.mktemp("results-state")
    settings = station_settings(
        cohort_store, state_dir, local_identities_file=_identities(state_dir)
    )
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def inside(results_station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(results_station), "http://internal.test") as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def outside(results_station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_external_app(results_station), "http://fdp.test") as c:
        yield c


def manifest(counts: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [[STAGES[i], c] for i, c in enumerate(counts)],
                "cohortSize": sum(counts),
            }
        ],
        **extra,
    }


def model(data: bytes, fmt: str) -> dict[str, Any]:
    return {
        "name": f"model.{fmt}",
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "sizeBytes": len(data),
        "dataBase64": base64.b64encode(data).decode(),
    }


async def run_train(
    inside: httpx.AsyncClient, body: dict[str, Any] | None, query: bool = True
) -> tuple[str, TrainRegistration]:
    """Register, query once (the audit sees the cohort), upload, report completion.

    The train's image is one the policy reviewed for automatic release, so these tests see
    what the gate's checks decide; the default hold is tested in tests/security.
    """
    token, reg = await register_reviewed(inside, [KM])
    if query:
        answer = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
    if body is not None:
        upload = await inside.put(RESULT_PATH, json=body, headers=bearer(token))
        assert upload.status_code == 201, upload.text
        assert upload.json()["attempt"] == 1
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    assert done.status_code == 200, done.text
    return token, reg


async def register_reviewed(
    inside: httpx.AsyncClient, queries: list[str]
) -> tuple[str, TrainRegistration]:
    token = secrets.token_urlsafe(24)
    reg = registration(token, queries)
    disclosure = reg.policy.disclosure.model_copy(
        update={"reviewed_images": [current_review(REVIEWED_IMAGE.split("@")[1])]}
    )
    policy = reg.policy.model_copy(update={"disclosure": disclosure})
    reg = reg.model_copy(update={"image": REVIEWED_IMAGE, "policy": policy})
    response = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert response.status_code == 201, response.text
    return token, reg


def result_url(reg: TrainRegistration) -> str:
    return f"/results/{reg.namespace}/{reg.name}"


def steward_url(reg: TrainRegistration) -> str:
    return f"/stewards/results/{reg.namespace}/{reg.name}"


async def test_small_cell_suppressed_and_released_as_json_and_csv(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, results_station: StationState
) -> None:
    counts = [COHORT_PATIENTS - 13, 3, 10]
    _, reg = await run_train(inside, manifest(counts))
    state = await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    body = state.json()
    assert (body["release"], body["uploads"]) == ("Released", 1)
    assert body["result"]["digest"].startswith("sha256:")
    released = await outside.get(result_url(reg), headers=bearer(REQUESTER))
    assert released.status_code == 200, released.text
    rows = released.json()["tables"][0]["rows"]
    assert rows[1] == [None, None]  # the small row is emptied, its label too
    table = await outside.get(result_url(reg) + "/tables/stages", headers=bearer(REQUESTER))
    assert table.headers["content-type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(table.text)))
    assert parsed == [["stage", "n"], ["I", "47"], ["", ""], ["IIIa", "10"]]
    denied = await outside.get(result_url(reg), headers=bearer(OUTSIDER))
    assert denied.status_code == 403
    story = results_station.chain.story(reg.uid)
    assert [r.kind.value for r in story] == ["registration", "query", "upload", "release"]
    assert story[-1].details["rule"] is None
    assert "MinCellCount" in str(story[-1].details["findings"])
    assert results_station.chain.verify().ok


async def test_model_is_held_until_a_steward_releases_it(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, results_station: StationState
) -> None:
    weights = json.dumps({"coef": [0.25, -1.5]}).encode()
    _, reg = await run_train(inside, manifest([30, 30], models=[model(weights, "json")]))
    state = await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    assert (state.json()["release"], state.json()["rule"]) == ("Held", "ManualReleaseRequired")
    assert state.json().get("result") is None
    early = await outside.get(result_url(reg), headers=bearer(REQUESTER))
    assert (early.status_code, early.json()["reason"]) == (404, "NotReleased")
    held = await outside.get("/stewards/held", headers=bearer(STEWARD))
    assert reg.uid in [item["uid"] for item in held.json()["items"]]
    assert (await outside.get("/stewards/held", headers=bearer(REQUESTER))).json() == {"items": []}
    view = await outside.get(steward_url(reg), headers=bearer(STEWARD))
    assert view.json()["outgoing"]["models"][0]["name"] == "model.json"
    assert (await outside.get(steward_url(reg), headers=bearer(REQUESTER))).status_code == 403
    release = {"decision": "Release", "reason": "coefficients only"}
    refused = await outside.post(
        steward_url(reg) + "/decision", json=release, headers=bearer(REQUESTER)
    )
    assert refused.status_code == 403
    decided = await outside.post(
        steward_url(reg) + "/decision", json=release, headers=bearer(STEWARD)
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["release"], decided.json()["decidedBy"]) == ("Released", "steward-sam")
    download = await outside.get(result_url(reg), headers=bearer(REQUESTER))
    assert download.json()["models"][0]["format"] == "json"
    story = await outside.get(steward_url(reg) + "/provenance", headers=bearer(STEWARD))
    last = story.json()["records"][-1]
    assert (last["actor"], last["details"]["heldBy"]) == ("steward-sam", "ManualReleaseRequired")
    metrics = generate_latest(results_station.metrics.registry).decode()
    assert 'pht_disclosure_decisions_total{decision="Held",rule="ManualReleaseRequired"' in (
        metrics.replace('station="test-station",', "")
    )


async def test_pickle_is_refused_and_cannot_be_released(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    payload = pickle.dumps({"w": [1.0]})
    _, reg = await run_train(inside, manifest([30, 30], models=[model(payload, "npy")]))
    state = await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    assert (state.json()["release"], state.json()["rule"]) == ("Blocked", "PickleRefused")
    release = {"decision": "Release", "reason": "please"}
    refused = await outside.post(
        steward_url(reg) + "/decision", json=release, headers=bearer(STEWARD)
    )
    assert (refused.status_code, refused.json()["reason"]) == (409, "NotHeld")


async def test_unaudited_cohort_is_held_and_no_upload_is_no_output(
    inside: httpx.AsyncClient,
) -> None:
    _, unaudited = await run_train(inside, manifest([30, 30]), query=False)
    state = await inside.get(TRAIN_STATE_PATH.format(uid=unaudited.uid), headers=operator_headers())
    assert state.json()["rule"] == "CohortUnverified"
    _, silent = await run_train(inside, None)
    state = await inside.get(TRAIN_STATE_PATH.format(uid=silent.uid), headers=operator_headers())
    assert state.json()["release"] == "NoOutput"


async def test_upload_refusals(inside: httpx.AsyncClient) -> None:
    token, reg = await register(inside, [KM])
    assert (await inside.put(RESULT_PATH, json=manifest([1]))).status_code == 401
    invalid = await inside.put(
        RESULT_PATH, json={"tables": [], "comment": "x"}, headers=bearer(token)
    )
    assert (invalid.status_code, invalid.json()["reason"]) == (422, "InvalidResult")
    too_large = await inside.put(
        RESULT_PATH, content=b" " * (10 * 1024 * 1024 + 1), headers=bearer(token)
    )
    assert (too_large.status_code, too_large.json()["reason"]) == (413, "ResultTooLarge")
    ok = await inside.put(RESULT_PATH, json=manifest([30, 30]), headers=bearer(token))
    assert ok.json()["attempt"] == 1
    for _ in range(MAX_UPLOADS - 1):
        again = await inside.put(RESULT_PATH, json=manifest([30, 30]), headers=bearer(token))
        assert again.status_code < 300, again.text
    excess = await inside.put(RESULT_PATH, json=manifest([30, 30]), headers=bearer(token))
    assert (excess.status_code, excess.json()["reason"]) == (409, "TooManyUploads")
    await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    late = await inside.put(RESULT_PATH, json=manifest([30, 30]), headers=bearer(token))
    assert (late.status_code, late.json()["reason"]) == (409, "ResultClosed")
    unknown = await inside.get(TRAIN_STATE_PATH.format(uid="nope"), headers=operator_headers())
    assert unknown.status_code == 404
    assert (await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid))).status_code == 401


async def test_operator_events_are_idempotent(
    inside: httpx.AsyncClient, results_station: StationState
) -> None:
    event = {
        "eventId": "admission/uid-42/1",
        "kind": "admission",
        "trainUid": "uid-42",
        "namespace": "pht-requests",
        "name": "km",
        "actor": "pht-operator",
        "at": "2026-11-28T12:00:00Z",
        "details": {"reason": "Admitted"},
    }
    first = await inside.post(PROVENANCE_PATH, json=event, headers=operator_headers())
    again = await inside.post(PROVENANCE_PATH, json=event, headers=operator_headers())
    assert first.status_code == 200, first.text
    assert first.json()["recordHash"] == again.json()["recordHash"]
    assert len(results_station.chain.story("uid-42")) == 1
    assert (await inside.post(PROVENANCE_PATH, json=event)).status_code == 401
    bad = {**event, "eventId": "x", "details": {"k": "v" * 2000}}
    refused = await inside.post(PROVENANCE_PATH, json=bad, headers=operator_headers())
    assert refused.status_code == 422


async def test_a_steward_cannot_release_the_result_of_their_own_train(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    """Someone who is both researcher and steward asks, and the gate holds the result: they may
    block it, but releasing it takes another steward (as approving it did)."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM]).model_copy(update={"requested_by": "steward-sam"})
    registered = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert registered.status_code == 201, registered.text
    assert (await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))).is_success
    upload = await inside.put(RESULT_PATH, json=manifest([30, 30]), headers=bearer(token))
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    assert done.status_code == 200, done.text
    release = {"decision": "Release", "reason": "looks fine to me"}
    refused = await outside.post(
        steward_url(reg) + "/decision", json=release, headers=bearer(STEWARD)
    )
    assert (refused.status_code, refused.json()["reason"]) == (403, "OwnResultRelease")
    assert (await outside.get(result_url(reg), headers=bearer(STEWARD))).status_code == 404
    block = {"decision": "Block", "reason": "on second thought"}
    blocked = await outside.post(
        steward_url(reg) + "/decision", json=block, headers=bearer(STEWARD)
    )
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["release"] == "Blocked"
