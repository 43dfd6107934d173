"""The operator's steps recorded as part of the calls it makes anyway: the admission and
approval records a registration carries, and the run's record from the completion call."""

import secrets
from typing import Any

import httpx
import pytest
from stationkit import operator_headers, registration

from pht_contract.wire import (
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    ProvenanceEvent,
    ProvenanceKind,
    TrainRegistration,
)
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")


def step(uid: str, kind: ProvenanceKind, **details: Any) -> ProvenanceEvent:
    return ProvenanceEvent(
        event_id=f"{uid}:{kind.value}:decision",
        kind=kind,
        train_uid=uid,
        namespace="pht-requests",
        name="km",
        actor="pht-station-operator",
        at="2026-11-30T08:00:00.000000Z",
        details=details,
    )


def carrying(*events: ProvenanceEvent) -> TrainRegistration:
    """A fresh Train's registration (its own token) carrying ``events``."""
    reg = registration(secrets.token_urlsafe(24))
    return reg.model_copy(update={"provenance": list(events)})


async def put(client: httpx.AsyncClient, reg: TrainRegistration) -> httpx.Response:
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    return await client.put(path, json=reg.wire(), headers=operator_headers())


async def test_carried_records_come_before_the_registration_and_only_once(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    reg = carrying()
    uid = reg.uid
    reg = reg.model_copy(
        update={
            "provenance": [
                step(uid, ProvenanceKind.ADMISSION, outcome="Admitted"),
                step(uid, ProvenanceKind.APPROVAL, outcome="Approved", approvers="steward"),
            ]
        }
    )
    assert (await put(internal, reg)).status_code == 201
    assert (await put(internal, reg)).status_code == 200  # a retried registration
    story = station.chain.story(uid)
    assert [r.kind for r in story] == ["admission", "approval", "registration", "registration"]
    admission = story[0]
    assert admission.event_id == f"{uid}:admission:decision"
    assert admission.actor == "pht-station-operator"
    assert admission.at == "2026-11-30T08:00:00.000000Z"
    assert admission.details == {"outcome": "Admitted", "namespace": "pht-requests", "name": "km"}
    assert station.chain.verify().ok


@pytest.mark.parametrize(
    ("carried", "why"),
    [
        (lambda uid: step("another-train", ProvenanceKind.ADMISSION), "about the Train"),
        (lambda uid: step(uid, ProvenanceKind.RELEASE, decision="Released"), "not release"),
        (lambda uid: step(uid, ProvenanceKind.DEREGISTRATION), "not deregistration"),
        (lambda uid: step(uid, ProvenanceKind.ADMISSION, note="x" * 2000), "longer than"),
    ],
)
async def test_a_registration_cannot_carry_other_records(
    internal: httpx.AsyncClient, station: StationState, carried: Any, why: str
) -> None:
    reg = carrying()
    reg = reg.model_copy(update={"provenance": [carried(reg.uid)]})
    before = len(station.chain)
    refused = await put(internal, reg)
    assert refused.status_code == 422, refused.text
    assert refused.json()["reason"] == "InvalidRegistration"
    assert why in refused.json()["message"]
    assert len(station.chain) == before  # nothing written, not even the good part
    assert station.registry.get(reg.uid) is None


async def test_carried_records_need_the_operators_credential(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    reg = carrying()
    reg = reg.model_copy(update={"provenance": [step(reg.uid, ProvenanceKind.ADMISSION)]})
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    assert (await internal.put(path, json=reg.wire())).status_code == 401
    assert station.chain.story(reg.uid) == []


async def test_the_completion_records_the_run_once(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    reg = carrying()
    assert (await put(internal, reg)).status_code == 201
    completion = {
        "jobSucceeded": False,
        "reason": "BackoffLimitExceeded",
        "jobUid": "job-uid-1",
        "jobCreatedAt": "2026-11-30T08:00:01Z",
        "attempts": 2,
    }
    path = TRAIN_COMPLETION_PATH.format(uid=reg.uid)
    for _ in range(2):  # retried: still one record
        answered = await internal.put(path, json=completion, headers=operator_headers())
        assert answered.status_code == 200, answered.text
    story = station.chain.story(reg.uid)
    runs = [r for r in story if r.kind == "run"]
    assert len(runs) == 1
    assert runs[0].event_id == f"{reg.uid}:run:ended"
    assert runs[0].details == {
        "namespace": reg.namespace,
        "name": reg.name,
        "jobUid": "job-uid-1",
        "jobCreatedAt": "2026-11-30T08:00:01Z",
        "attempts": 2,
        "jobSucceeded": False,
        "reason": "BackoffLimitExceeded",
    }
    kinds = [r.kind for r in story]
    assert kinds.index("registration") < kinds.index("run") < kinds.index("release")
    assert station.chain.verify().ok


async def test_a_completion_without_run_facts_records_no_run(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    reg = carrying()
    assert (await put(internal, reg)).status_code == 201
    path = TRAIN_COMPLETION_PATH.format(uid=reg.uid)
    done = {"jobSucceeded": True, "reason": "RunCompleted"}
    assert (await internal.put(path, json=done, headers=operator_headers())).status_code == 200
    assert "run" not in [r.kind for r in station.chain.story(reg.uid)]


async def test_run_facts_the_chain_cannot_hold_are_refused_before_anything_is_decided(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    reg = carrying()
    assert (await put(internal, reg)).status_code == 201
    path = TRAIN_COMPLETION_PATH.format(uid=reg.uid)
    body = b'{"jobSucceeded": true, "reason": "RunCompleted", "jobUid": "\\ud800"}'
    headers = {**operator_headers(), "Content-Type": "application/json"}
    refused = await internal.put(path, content=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["reason"] == "InvalidRequest"
    assert [r.kind for r in station.chain.story(reg.uid)] == ["registration"]
