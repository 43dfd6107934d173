"""Operator registration: idempotent PUT, immediate revocation, persistence, credentials."""

import json
from pathlib import Path

import httpx
import pytest
from stationkit import bearer, example_query, operator_headers, register, registration

from pht_contract.wire import PROGRESS_PATH, SPARQL_PATH, TRAIN_REGISTRATION_PATH
from pht_station_api.registry import TrainRegistry
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")


async def test_put_is_idempotent_and_keyed_by_uid(internal: httpx.AsyncClient) -> None:
    reg = registration("token-one", [KM])
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    first = await internal.put(path, json=reg.wire(), headers=operator_headers())
    again = await internal.put(path, json=reg.wire(), headers=operator_headers())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["created"] is True and again.json()["created"] is False
    assert first.json()["registeredAt"] == again.json()["registeredAt"]


async def test_registration_needs_the_operator_credential(internal: httpx.AsyncClient) -> None:
    reg = registration("token-two", [KM])
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    assert (await internal.put(path, json=reg.wire())).status_code == 401
    wrong = await internal.put(path, json=reg.wire(), headers=bearer("not-the-operator"))
    assert wrong.status_code == 401 and wrong.json()["reason"] == "Unauthenticated"
    assert (await internal.delete(path, headers=bearer("token-two"))).status_code == 401


async def test_mismatched_uid_and_graphs_outside_policy_conflict(
    internal: httpx.AsyncClient,
) -> None:
    reg = registration("token-three", [KM])
    response = await internal.put(
        TRAIN_REGISTRATION_PATH.format(uid="another-uid"),
        json=reg.wire(),
        headers=operator_headers(),
    )
    assert response.status_code == 409
    outside = registration("token-four", [KM], allowed_graphs=["urn:pht:graph:secret"])
    response = await internal.put(
        TRAIN_REGISTRATION_PATH.format(uid=outside.uid),
        json=outside.wire(),
        headers=operator_headers(),
    )
    assert response.status_code == 409


async def test_invalid_body_is_422_without_echo(internal: httpx.AsyncClient) -> None:
    response = await internal.put(
        TRAIN_REGISTRATION_PATH.format(uid="x"),
        json={"uid": "x", "tokenHash": "secret-looking-value"},
        headers=operator_headers(),
    )
    assert response.status_code == 422
    assert "secret-looking-value" not in response.text


async def test_deregistration_revokes_and_is_final(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM])
    path = TRAIN_REGISTRATION_PATH.format(uid=reg.uid)
    assert (await internal.delete(path, headers=operator_headers())).status_code == 204
    assert (await internal.delete(path, headers=operator_headers())).status_code == 204
    response = await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert response.status_code == 401
    again = await internal.put(path, json=reg.wire(), headers=operator_headers())
    assert again.status_code == 409
    kinds = [r.kind for r in station.chain.records() if r.train_uid == reg.uid]
    assert kinds == ["registration", "deregistration"]


async def test_registrations_survive_a_restart(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM])
    await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    reloaded = TrainRegistry(station.settings.registry_path)
    train = reloaded.by_token_hash(reg.token_hash)
    assert train is not None and train.uid == reg.uid and train.queries_run == 1
    assert train.max_distinct_patients > 0


async def test_progress_is_a_number_and_a_stage(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM])
    ok = await internal.post(
        PROGRESS_PATH, json={"percent": 40, "stage": "Computing"}, headers=bearer(token)
    )
    assert ok.status_code == 204
    train = station.registry.get(reg.uid)
    # offered for the next progress tick, rounded to a multiple of 25 %
    assert train is not None and train.progress_offer is not None
    assert train.progress_offer.percent == 25
    free_text = await internal.post(
        PROGRESS_PATH,
        json={"percent": 50, "stage": "Computing", "message": "patient 17 is odd"},
        headers=bearer(token),
    )
    assert free_text.status_code == 422
    assert (
        await internal.post(PROGRESS_PATH, json={"percent": 1, "stage": "Done"})
    ).status_code == 401


async def test_counters_are_saved_lazily_but_the_cohort_size_at_once(tmp_path: Path) -> None:
    path = tmp_path / "registrations.json"
    registry = TrainRegistry(path)
    reg = registration("lazy-token", [KM])
    registry.register(reg)
    registry.record_query(reg.uid, 12)  # a larger cohort: written at once
    registry.record_query(reg.uid, 3)  # only a counter: may wait
    on_disk = TrainRegistry(path).get(reg.uid)
    assert on_disk is not None and on_disk.max_distinct_patients == 12
    registry.flush()
    flushed = TrainRegistry(path).get(reg.uid)
    assert flushed is not None and flushed.queries_run == 2


@pytest.mark.parametrize(
    "change",
    [{"allowed_graphs": []}, {"expires_at": "next tuesday"}],
    ids=["no-graphs", "bad-expiry"],
)
async def test_unusable_registrations_are_refused(
    internal: httpx.AsyncClient, change: dict[str, object]
) -> None:
    reg = registration("unusable-token", [KM]).model_copy(update=change)
    response = await internal.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert response.status_code == 422 and response.json()["reason"] == "InvalidRegistration"


async def test_a_run_saved_with_bare_trusted_digests_loads_and_trusts_nothing(
    tmp_path: Path,
) -> None:
    """Runs saved before image reviews replaced bare digests still load after an upgrade; the
    bare digests are dropped, so no result of theirs is released without a steward."""
    path = tmp_path / "registrations.json"
    registry = TrainRegistry(path)
    reg = registration("saved-token", [KM])
    registry.register(reg)
    registry.flush()
    saved = json.loads(path.read_text())
    disclosure = saved["trains"][0]["registration"]["policy"]["disclosure"]
    disclosure["autoReleaseImageDigests"] = [reg.image.partition("@")[2] or "sha256:" + "a" * 64]
    path.write_text(json.dumps(saved))
    loaded = TrainRegistry(path).get(reg.uid)
    assert loaded is not None
    assert loaded.registration.policy.disclosure.reviewed_images == []
