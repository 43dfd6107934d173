"""The requester against release-by-default: a clean-looking result does not leave by itself.

Through both listeners of a real station (embedded Oxigraph, the real gate and result archive):
a result that passes every check is still held for a steward unless the policy lists the
train's image digest for automatic release; the requester gets ``404 NotReleased`` until a
steward releases it. A tag, or another digest of the same repository, is not the reviewed code.
"""

import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from security_gate_kit import REVIEWED_DIGEST, REVIEWED_IMAGE

from pht_contract.policies import ImageReview
from pht_contract.times import utc_iso
from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TRAIN_STATE_PATH,
    TrainRegistration,
)
from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.state import StationState

# After security_gate_kit, which makes the station API's test helpers importable.
from stationkit import (  # isort: skip
    bearer,
    client_for,
    current_review,
    example_query,
    make_store,
    operator_headers,
    registration,
    started_station,
    station_settings,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
STEWARD, REQUESTER = "gate-steward-token", "gate-requester-token"
DONE = {"jobSucceeded": True, "reason": "RunCompleted"}
CLEAN = {
    "tables": [
        {
            "name": "stages",
            "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
            "rows": [["I", 30], ["IIIb", 30]],
            "cohortSize": 60,
        }
    ]
}


def _identities(directory: Path) -> Path:
    def user(name: str, token: str, group: str) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return {"username": name, "groups": [group], "tokenSha256": digest}

    path = directory / "people.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    user("steward-sam", STEWARD, "pht-stewards"),
                    user("dr-mallory", REQUESTER, "researchers"),
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
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StationState]:
    root = tmp_path_factory.mktemp("gate-default-hold")
    settings = station_settings(
        make_store(root / "store"), root / "state", local_identities_file=_identities(root)
    )
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def inside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def outside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_external_app(station), "http://fdp.test") as client:
        yield client


async def _run(
    inside: httpx.AsyncClient,
    image: str,
    reviewed: list[str],
    as_built: bool = True,
    reviews: list[ImageReview] | None = None,
) -> TrainRegistration:
    """Register with ``image`` under the example policy with a current steward's review of each
    digest in ``reviewed`` (or exactly ``reviews``); run; complete."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM])
    if reviews is None:
        reviews = [current_review(digest) for digest in reviewed]
    disclosure = reg.policy.disclosure.model_copy(update={"reviewed_images": reviews})
    reg = reg.model_copy(
        update={
            "image": image,
            "image_runs_as_built": as_built,
            "policy": reg.policy.model_copy(update={"disclosure": disclosure}),
        }
    )
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    answer = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    upload = await inside.put(RESULT_PATH, json=CLEAN, headers=bearer(token))
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    assert done.status_code == 200, done.text
    return reg


async def _state(inside: httpx.AsyncClient, reg: TrainRegistration) -> tuple[str, str | None]:
    state = await inside.get(TRAIN_STATE_PATH.format(uid=reg.uid), headers=operator_headers())
    return state.json()["release"], state.json()["rule"]


async def test_a_clean_result_waits_for_a_steward_by_default(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    reg = await _run(inside, REVIEWED_IMAGE, reviewed=[])
    assert await _state(inside, reg) == ("Held", "StewardReviewRequired")
    url = f"/results/{reg.namespace}/{reg.name}"
    early = await outside.get(url, headers=bearer(REQUESTER))
    assert (early.status_code, early.json()["reason"]) == (404, "NotReleased")
    table = await outside.get(url + "/tables/stages", headers=bearer(REQUESTER))
    assert table.status_code == 404
    # the requester cannot release it either
    decision = {"decision": "Release", "reason": "mine"}
    steward_url = f"/stewards/results/{reg.namespace}/{reg.name}"
    refused = await outside.post(
        steward_url + "/decision", json=decision, headers=bearer(REQUESTER)
    )
    assert refused.status_code == 403
    # the steward sees the gate's findings and decides
    view = await outside.get(steward_url, headers=bearer(STEWARD))
    assert "StewardReviewRequired" in str(view.json())
    released = await outside.post(steward_url + "/decision", json=decision, headers=bearer(STEWARD))
    assert released.status_code == 200, released.text
    assert (await outside.get(url, headers=bearer(REQUESTER))).status_code == 200


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/pht-station/trains/kaplan-meier:0.1.0",  # the same repository by tag
        "ghcr.io/pht-station/trains/kaplan-meier@sha256:" + "9" * 64,  # another digest
        "ghcr.io/pht-station/trains/kaplan-meier:" + REVIEWED_DIGEST.replace(":", "-"),
        REVIEWED_DIGEST,  # a bare digest is no pinned image reference
    ],
)
async def test_only_the_reviewed_digest_skips_the_steward(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, image: str
) -> None:
    reg = await _run(inside, image, reviewed=[REVIEWED_DIGEST])
    assert await _state(inside, reg) == ("Held", "StewardReviewRequired")
    early = await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    assert early.status_code == 404


async def test_the_reviewed_image_is_released_after_the_checks(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    reg = await _run(inside, REVIEWED_IMAGE, reviewed=[REVIEWED_DIGEST])
    assert await _state(inside, reg) == ("Released", None)
    download = await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    assert download.status_code == 200


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        (-200, -1),  # expired yesterday
        (2, 100),  # dated the day after tomorrow
    ],
)
async def test_a_review_that_does_not_count_now_waits_for_a_steward(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, starts: int, ends: int
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    review = current_review(REVIEWED_DIGEST).model_copy(
        update={
            "reviewed_at": utc_iso(now + timedelta(days=starts)),
            "expires_at": utc_iso(now + timedelta(days=ends)),
        }
    )
    reg = await _run(inside, REVIEWED_IMAGE, reviewed=[], reviews=[review])
    assert await _state(inside, reg) == ("Held", "StewardReviewRequired")
    early = await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    assert early.status_code == 404


async def test_a_reviewed_image_with_its_command_overridden_waits_for_a_steward(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    """The steward reviewed the image's code; `command: [python, -c, ...]` runs other code."""
    reg = await _run(inside, REVIEWED_IMAGE, reviewed=[REVIEWED_DIGEST], as_built=False)
    assert await _state(inside, reg) == ("Held", "StewardReviewRequired")
    early = await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    assert early.status_code == 404
