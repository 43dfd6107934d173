"""A signed review lets a passing result skip a steward, through a real station and its gate.

The Train's registration carries its ``spec.signedReview`` and the admitting policy's trusted
reviewer keys; the gate verifies the envelope when it decides. A review signed by a key the
policy does not list, or a run that overrides the image's command, is held for a steward.
"""

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from signed_review_kit import KEY_ADDED_BY, new_key, review_of, signed, signing_key, trusted
from stationkit import (
    COHORT_PATIENTS,
    bearer,
    client_for,
    example_query,
    operator_headers,
    registration,
    started_station,
    station_settings,
)

from pht_contract.policies import ImageReview
from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    TrainRegistration,
)
from pht_station_api.app import create_internal_app
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
IMAGE = "ghcr.io/pht-station/trains/kaplan-meier:0.1.0@sha256:" + "d" * 64
DIGEST = IMAGE.split("@")[1]
BOARD = new_key("ed25519")
STRANGER = new_key()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(
    cohort_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    settings = station_settings(cohort_store, tmp_path_factory.mktemp("signed-review-state"))
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def inside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


def _manifest() -> dict[str, Any]:
    counts = [COHORT_PATIENTS - 20, 10, 10]
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [[stage, n] for stage, n in zip(["I", "II", "IIIa"], counts, strict=True)],
                "cohortSize": sum(counts),
            }
        ]
    }


async def _run(
    inside: httpx.AsyncClient,
    envelope: str | None,
    *,
    as_built: bool = True,
    reviewed: list[dict[str, Any]] | None = None,
    trust_now: dict[str, Any] | None = None,
) -> tuple[TrainRegistration, str]:
    """Register a Train of :data:`IMAGE` carrying ``envelope`` under a policy that trusts the
    board's key, query, upload a passing result, complete; the release state."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM])
    disclosure = reg.policy.disclosure.model_copy(
        update={
            "trusted_reviewers": [trusted(BOARD, "Consortium review board")],
            "reviewed_images": [ImageReview.model_validate(r) for r in reviewed or []],
        }
    )
    policy = reg.policy.model_copy(update={"disclosure": disclosure})
    reg = reg.model_copy(
        update={
            "image": IMAGE,
            "policy": policy,
            "signed_review": envelope,
            "image_runs_as_built": as_built,
        }
    )
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    response = await inside.put(path, json=reg.wire(), headers=operator_headers())
    assert response.status_code == 201, response.text
    answer = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    upload = await inside.put(RESULT_PATH, json=_manifest(), headers=bearer(token))
    assert upload.status_code == 201, upload.text
    done: dict[str, Any] = {"jobSucceeded": True, "reason": "RunCompleted"}
    if trust_now is not None:
        done["trustNow"] = trust_now
    path = TRAIN_COMPLETION_PATH.format(uid=reg.uid)
    assert (await inside.put(path, json=done, headers=operator_headers())).status_code == 200
    state = await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    return reg, str(state.json()["release"])


async def test_a_valid_signed_review_releases_a_passing_result_and_names_its_key(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    envelope = signed(DIGEST, BOARD, reviewer="Dr. Board Chair")
    reg, release = await _run(inside, envelope)
    assert release == "Released"
    details = station.chain.story(reg.uid)[-1].details
    assert details["decision"] == "Released"
    assert details["reviewer"] == "Dr. Board Chair"
    assert details["reviewDigest"] == DIGEST
    assert details["reviewKeyId"] == signing_key(BOARD).key_id
    assert details["reviewKeyName"] == "Consortium review board"
    assert details["reviewKeyAddedBy"] == KEY_ADDED_BY
    assert details["reviewEnvelopeSha256"] == hashlib.sha256(envelope.encode()).hexdigest()
    statement = base64.b64decode(json.loads(envelope)["payload"])
    assert details["reviewStatementSha256"] == hashlib.sha256(statement).hexdigest()
    assert station.chain.verify().ok


async def test_a_respelled_copy_of_a_review_is_recorded_as_the_same_signed_statement(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    """Key ids are not signed and base64 has two alphabets: a researcher can change the
    envelope's bytes, never the statement the board signed, which the record names."""
    envelope = signed(DIGEST, BOARD)
    copy = json.loads(envelope)
    copy["payload"] = base64.urlsafe_b64encode(base64.b64decode(copy["payload"])).decode()
    copy["signatures"][0]["keyid"] = "any hint"
    respelled = json.dumps(copy)
    first, released = await _run(inside, envelope)
    second, also_released = await _run(inside, respelled)
    assert released == also_released == "Released"
    records = [station.chain.story(reg.uid)[-1].details for reg in (first, second)]
    assert records[0]["reviewEnvelopeSha256"] != records[1]["reviewEnvelopeSha256"]
    assert records[0]["reviewStatementSha256"] == records[1]["reviewStatementSha256"]


async def test_a_review_signed_by_a_key_the_policy_does_not_trust_is_held(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    reg, release = await _run(inside, signed(DIGEST, STRANGER))
    assert release == "Held"
    details = station.chain.story(reg.uid)[-1].details
    assert "StewardReviewRequired (signed by a key this station does not trust): Held" in str(
        details["findings"]
    )
    assert "reviewKeyId" not in details


async def test_a_run_that_overrides_the_command_is_held_despite_a_valid_signed_review(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    reg, release = await _run(inside, signed(DIGEST, BOARD), as_built=False)
    assert release == "Held"
    findings = str(station.chain.story(reg.uid)[-1].details["findings"])
    assert "StewardReviewRequired (signed review does not cover a run that changes" in findings


async def test_an_expired_signed_review_or_one_of_another_image_is_held(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    expired, held = await _run(inside, signed(DIGEST, BOARD, start_days=-40, end_days=-1))
    assert held == "Held"
    assert "(signed review expired)" in str(station.chain.story(expired.uid)[-1].details)
    other, held = await _run(inside, signed("sha256:" + "e" * 64, BOARD))
    assert held == "Held"
    assert "(signed review of another image)" in str(station.chain.story(other.uid)[-1].details)


async def test_a_key_withdrawn_while_the_run_went_on_no_longer_releases(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    """The run was registered under a policy trusting the board; by its end a steward removed
    the key (it leaked, say): the result waits for a steward."""
    envelope = signed(DIGEST, BOARD)
    board = trusted(BOARD, "Consortium review board").wire()
    _, released = await _run(inside, envelope, trust_now={"trustedReviewers": [board]})
    assert released == "Released"
    withdrawn, held = await _run(inside, envelope, trust_now={"trustedReviewers": []})
    assert held == "Held"
    findings = str(station.chain.story(withdrawn.uid)[-1].details["findings"])
    assert "StewardReviewRequired (signed by a key this station does not trust)" in findings
    changed = {**board, "expiresAt": "2020-01-01T00:00:00Z"}
    _, held = await _run(inside, envelope, trust_now={"trustedReviewers": [changed]})
    assert held == "Held"


async def test_a_review_withdrawn_from_the_policy_while_the_run_went_on_no_longer_releases(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    review = review_of(DIGEST).wire()
    _, release = await _run(inside, None, reviewed=[review], trust_now={"reviewedImages": []})
    assert release == "Held"
    _, release = await _run(inside, None, reviewed=[review], trust_now={"reviewedImages": [review]})
    assert release == "Released"
