"""The requester as attacker against the differencing ledger, through a real station API.

Every attack here once worked: the ledger compared cohort *sizes*, so a stage table over 172
patients and then over 171 named the stage of the one left out, and a table over the same number
of patients with one swapped went unnoticed; and it was kept per requester while every
researcher of a namespace can download every release there, so two colleagues could difference
each other's results. The ledger now compares the patient sets the audited queries bound, with
every earlier released or held result of the station.
"""

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from security_ledger_station import (
    ALICE,
    BOB,
    CAROL,
    STEWARD,
    USERS,
    block_query,
    count_manifest,
    count_query,
    identities,
    patient_iris,
    result_url,
    run_train,
    steward_url,
)
from stationkit import bearer, client_for, make_store, started_station, station_settings

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.state import StationState

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

HELD_BY_LEDGER = ("Held", "Differencing")
RELEASED = ("Released", None)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledger-state")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(
    tmp_path_factory: pytest.TempPathFactory, state_dir: Path
) -> AsyncIterator[StationState]:
    store = make_store(tmp_path_factory.mktemp("ledger-cohort") / "store")
    settings = station_settings(store, state_dir, local_identities_file=identities(state_dir))
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def iris(inside: httpx.AsyncClient) -> list[str]:
    found = await patient_iris(inside)
    assert len(found) >= 20
    return found


def outcome(state: dict[str, object]) -> tuple[object, object]:
    return state["release"], state.get("rule")


async def test_one_patient_fewer_is_held_and_never_reaches_the_requester(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """n, then n-1: the second table would tell the left-out patient's stage."""
    first, state = await run_train(inside, "stages", "oncology", USERS[ALICE], block_query(iris, 0))
    assert outcome(state) == RELEASED
    assert (await outside.get(result_url(first), headers=bearer(ALICE))).status_code == 200
    minus_one = block_query(iris, 0, 45)
    second, state = await run_train(inside, "stages-again", "oncology", USERS[ALICE], minus_one)
    assert outcome(state) == HELD_BY_LEDGER
    assert state.get("result") is None
    download = await outside.get(result_url(second), headers=bearer(ALICE))
    assert (download.status_code, download.json()["reason"]) == (404, "NotReleased")
    table = await outside.get(result_url(second) + "/tables/stages", headers=bearer(ALICE))
    assert table.status_code == 404
    # The steward learns the rule and which earlier result it is close to, not the patients.
    view = (await outside.get(steward_url(second), headers=bearer(STEWARD))).json()
    assert view["findings"][-1] == "Differencing (patient set near oncology/stages): Held"
    assert not any(iri in str(view) for iri in iris)


async def test_the_same_number_of_patients_with_one_swapped_is_held(
    inside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Equal cohort sizes: a size ledger saw nothing; the sets differ by two patients."""
    _, state = await run_train(inside, "swap-1", "swaps", "oidc:dave", block_query(iris, 1, 45))
    assert outcome(state) == RELEASED
    _, state = await run_train(inside, "swap-2", "swaps", "oidc:dave", block_query(iris, 1, 46))
    assert outcome(state) == HELD_BY_LEDGER


async def test_a_colleague_in_the_namespace_is_compared_with_what_they_can_read(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Bob can download Alice's release, so his own near-identical one is held."""
    alices, state = await run_train(
        inside, "team-a", "oncology", USERS[ALICE], block_query(iris, 2)
    )
    assert outcome(state) == RELEASED
    assert (await outside.get(result_url(alices), headers=bearer(BOB))).status_code == 200
    bobs, state = await run_train(
        inside, "team-b", "oncology", USERS[BOB], block_query(iris, 2, 45)
    )
    assert outcome(state) == HELD_BY_LEDGER
    refused = await outside.get(result_url(bobs), headers=bearer(BOB))
    assert refused.status_code == 404


async def test_the_requester_carries_what_they_received_to_another_namespace(
    inside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Alice's release in oncology, then her n-1 train in oncology-2: still the same reader."""
    _, state = await run_train(inside, "move-1", "oncology", USERS[ALICE], block_query(iris, 3))
    assert outcome(state) == RELEASED
    _, state = await run_train(
        inside, "move-2", "oncology-2", USERS[ALICE], block_query(iris, 3, 45)
    )
    assert outcome(state) == HELD_BY_LEDGER


async def test_a_researcher_of_another_namespace_is_compared_and_cannot_download(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """The chart binds the same researchers in every station namespace, so a near-identical
    result in another namespace is held too; and where RBAC does keep namespaces apart (Carol
    reads cardiology only), the other namespace's release is a 403 with its reason."""
    alices, state = await run_train(
        inside, "onc-only", "oncology", USERS[ALICE], block_query(iris, 4)
    )
    assert outcome(state) == RELEASED
    carols, state = await run_train(
        inside, "card-only", "cardiology", USERS[CAROL], block_query(iris, 4, 45)
    )
    assert outcome(state) == HELD_BY_LEDGER
    denied = await outside.get(result_url(alices), headers=bearer(CAROL))
    assert (denied.status_code, denied.json()["reason"]) == (403, "Forbidden")
    denied = await outside.get(result_url(alices) + "/tables/stages", headers=bearer(CAROL))
    assert (denied.status_code, denied.json()["reason"]) == (403, "Forbidden")
    denied = await outside.get(result_url(carols), headers=bearer(ALICE))
    assert (denied.status_code, denied.json()["reason"]) == (403, "Forbidden")


async def test_a_new_name_or_organisation_in_the_spec_starts_no_fresh_ledger(
    inside: httpx.AsyncClient, iris: list[str]
) -> None:
    """The old key was the typed organisation and name: varying them reset the ledger."""
    _, state = await run_train(
        inside,
        "typed-1",
        "typed",
        "oidc:ivy",
        block_query(iris, 8),
        requester_name="Dr. I. Vy",
        requester_organisation="maastro",
    )
    assert outcome(state) == RELEASED
    _, state = await run_train(
        inside,
        "typed-2",
        "typed",
        None,
        block_query(iris, 8, 45),
        requester_name="Someone Else",
        requester_organisation="radboudumc",
    )
    assert outcome(state) == HELD_BY_LEDGER


async def test_the_same_patients_again_are_released(
    inside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Zero differences disclose nothing new: a rerun over the same cohort is not held."""
    _, state = await run_train(inside, "rerun-1", "reruns", "oidc:erin", block_query(iris, 5))
    assert outcome(state) == RELEASED
    _, state = await run_train(inside, "rerun-2", "reruns", "oidc:erin", block_query(iris, 5))
    assert outcome(state) == RELEASED


async def test_a_held_result_counts_until_a_steward_blocks_it(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """A held result may still be released, so later results are compared with it too; once a
    steward blocks it, no reader can ever have it, and it holds nothing back any more."""
    _, state = await run_train(
        inside, "blk-a", "blocks", "oidc:fay", block_query(iris, 6, *range(45, 54))
    )
    assert outcome(state) == RELEASED
    held, state = await run_train(
        inside, "blk-b", "blocks", "oidc:fay", block_query(iris, 6, *range(45, 53))
    )
    assert outcome(state) == HELD_BY_LEDGER
    # Five patients from the release (not held on its account), four from the held result.
    near_held = block_query(iris, 6, *range(45, 49))
    _, state = await run_train(inside, "blk-c", "blocks", "oidc:fay", near_held)
    assert outcome(state) == HELD_BY_LEDGER
    block = {"decision": "Block", "reason": "one patient from blk-a"}
    decided = await outside.post(
        steward_url(held) + "/decision", json=block, headers=bearer(STEWARD)
    )
    assert decided.status_code == 200, decided.text
    _, state = await run_train(inside, "blk-d", "blocks", "oidc:fay", near_held)
    assert outcome(state) == RELEASED


async def test_counting_in_sparql_does_not_hide_a_one_patient_difference(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Aggregate-only queries bind no patient IRIs, so there is no patient set: the result is
    held (CohortUnverified) and the steward also sees the size-based Differencing finding."""
    counts = count_query(*iris[40:45])
    first, state = await run_train(
        inside, "agg-1", "aggregates", "oidc:hal", counts, count_manifest
    )
    assert outcome(state) == ("Held", "CohortUnverified")
    view = (await outside.get(steward_url(first), headers=bearer(STEWARD))).json()
    assert not any(f.startswith("Differencing") for f in view["findings"])
    fewer = count_query(*iris[40:45], iris[45])
    second, state = await run_train(
        inside, "agg-2", "aggregates", "oidc:hal", fewer, count_manifest
    )
    assert outcome(state) == ("Held", "CohortUnverified")
    view = (await outside.get(steward_url(second), headers=bearer(STEWARD))).json()
    assert view["findings"][-1] == "Differencing (cohort size near aggregates/agg-1): Held"


def without_approved_texts(registrations: str) -> str:
    """The registrations file less the approved query texts (kept to run them)."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: ([] if k == "approvedQueries" else strip(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return json.dumps(strip(json.loads(registrations)))


async def test_no_patient_iri_is_kept_in_state_logged_or_chained(
    inside: httpx.AsyncClient,
    station: StationState,
    state_dir: Path,
    iris: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ledger keeps keyed fingerprints only; neither IRIs nor plain hashes of them."""
    caplog.set_level(logging.DEBUG)
    query = block_query(iris, 7)
    reg, _ = await run_train(inside, "quiet", "quiet", "oidc:gil", query)
    station.registry.flush()
    # Registrations keep the approved query texts they run, and these tests' queries name the
    # patients they leave out: that is steward-approved text, not something the ledger kept.
    assert sum(iri in query for iri in iris) == 5
    kept = [p for p in state_dir.rglob("*") if p.is_file()]
    entry = json.loads((state_dir / "results" / "_ledger" / f"{reg.uid}.json").read_text())
    assert len(entry["patients"]) == len(iris) - 5
    plain = {hashlib.sha256(iri.encode()).hexdigest()[:32] for iri in iris}
    for path in kept:
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.name == "registrations.json":
            text = without_approved_texts(text)
        assert not any(iri in text for iri in iris), path.name
        assert not any(digest in text for digest in plain), path.name
    assert not any(iri in caplog.text for iri in iris)
    # Decided: the registry no longer keeps the set; the chain never had it.
    registered = station.registry.get(reg.uid)
    assert registered is not None and registered.patient_set == set()
    story = " ".join(str(r.canonical()) for r in station.chain.story(reg.uid))
    assert not any(f in story for f in entry["patients"])
    key = state_dir / "patient-fingerprint.key"
    assert key.stat().st_mode & 0o077 == 0
