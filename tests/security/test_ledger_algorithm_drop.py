"""The requester as attacker against the differencing ledger: the algorithm drops a patient.

Two runs of a reviewed (auto-released) image use the same approved query, so both bind the same
patients and the patient-set comparison sees no difference; the second run's code leaves one
patient out of its stage table and declares the smaller cohort. Released side by side, the two
tables name the left-out patient's stage. The ledger therefore also compares the declared
cohort sizes of results over (nearly) the same patients, and holds a result whose declared
cohort is just below the cohort its audited queries saw.
"""

from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from security_ledger_station import (
    ALICE,
    STEWARD,
    USERS,
    block_query,
    identities,
    patient_iris,
    result_url,
    run_train,
    stage_query,
    steward_url,
)
from stationkit import bearer, client_for, make_store, started_station, station_settings

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.state import StationState

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

HELD_BY_LEDGER = ("Held", "Differencing")
RELEASED = ("Released", None)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StationState]:
    state_dir: Path = tmp_path_factory.mktemp("drop-state")
    store = make_store(tmp_path_factory.mktemp("drop-cohort") / "store")
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


def dropping(count: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The attacker's algorithm: a stage table over all it was given but ``count`` patients
    (the last ones by IRI), dropped in code after the audited query bound them."""

    def build(answer: dict[str, Any]) -> dict[str, Any]:
        rows = answer["results"]["bindings"]
        kept = sorted({row["patient"]["value"] for row in rows})[: -count or None]
        counts = Counter(row["stage"]["value"] for row in rows if row["patient"]["value"] in kept)
        return {
            "tables": [
                {
                    "name": "stages",
                    "columns": [
                        {"name": "stage", "role": "Group"},
                        {"name": "n", "role": "Count"},
                    ],
                    "rows": [[stage, n] for stage, n in sorted(counts.items())],
                    "cohortSize": len(kept),
                }
            ]
        }

    return build


def without(excluded: set[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The attacker's algorithm: a stage table over what it was given less ``excluded``."""

    def build(answer: dict[str, Any]) -> dict[str, Any]:
        rows = [r for r in answer["results"]["bindings"] if r["patient"]["value"] not in excluded]
        counts = Counter(row["stage"]["value"] for row in rows)
        return {
            "tables": [
                {
                    "name": "stages",
                    "columns": [
                        {"name": "stage", "role": "Group"},
                        {"name": "n", "role": "Count"},
                    ],
                    "rows": [[stage, n] for stage, n in sorted(counts.items())],
                    "cohortSize": len({row["patient"]["value"] for row in rows}),
                }
            ]
        }

    return build


def outcome(state: dict[str, object]) -> tuple[object, object]:
    return state["release"], state.get("rule")


async def test_a_patient_dropped_in_code_after_a_full_release_is_held(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """n, then n-1 over the very same bound patients: the second never reaches the reader."""
    query = block_query(iris, 0)
    _, state = await run_train(inside, "full", "oncology", USERS[ALICE], query, dropping(0))
    assert outcome(state) == RELEASED
    second, state = await run_train(inside, "drop", "oncology", USERS[ALICE], query, dropping(1))
    assert outcome(state) == HELD_BY_LEDGER
    assert state.get("result") is None
    download = await outside.get(result_url(second), headers=bearer(ALICE))
    assert (download.status_code, download.json()["reason"]) == (404, "NotReleased")
    table = await outside.get(result_url(second) + "/tables/stages", headers=bearer(ALICE))
    assert table.status_code == 404
    view = (await outside.get(steward_url(second), headers=bearer(STEWARD))).json()
    assert "Differencing (cohort size near oncology/full): Held" in view["findings"]
    assert not any(iri in str(view) for iri in iris)


async def test_a_patient_dropped_in_code_is_held_even_with_nothing_to_compare(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """The drop comes first: n-1 of the n audited patients is one half of a differencing pair
    (any later result over all n is the other), so it waits for a steward."""
    query = block_query(iris, 1)
    first, state = await run_train(inside, "drop-1st", "cardio", "oidc:dave", query, dropping(1))
    assert outcome(state) == HELD_BY_LEDGER
    view = (await outside.get(steward_url(first), headers=bearer(STEWARD))).json()
    assert view["findings"][-1] == "Differencing (cohort size just below the audited cohort): Held"
    # Held results are ledger entries: the full table over the same patients is held as well.
    _, state = await run_train(inside, "full-2nd", "cardio", "oidc:dave", query, dropping(0))
    assert outcome(state) == HELD_BY_LEDGER


async def test_dropping_several_patients_in_two_steps_is_held(
    inside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Dropping k or more (not near the audited cohort) and then one more: the declared
    cohorts of the two results differ by one over the same bound patients."""
    query = block_query(iris, 2)
    _, state = await run_train(inside, "drop-5", "genomics", "oidc:erin", query, dropping(5))
    assert outcome(state) == RELEASED
    _, state = await run_train(inside, "drop-6", "genomics", "oidc:erin", query, dropping(6))
    assert outcome(state) == HELD_BY_LEDGER


async def test_a_rerun_over_the_same_patients_with_the_same_cohorts_is_released(
    inside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Nothing new is disclosed by the same analysis again: no false hold on honest reruns."""
    query = block_query(iris, 3)
    _, state = await run_train(inside, "again-1", "reruns", "oidc:fay", query, dropping(0))
    assert outcome(state) == RELEASED
    _, state = await run_train(inside, "again-2", "reruns", "oidc:fay", query, dropping(0))
    assert outcome(state) == RELEASED


async def test_a_wider_query_rebuilding_an_earlier_cohort_less_one_is_held(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient, iris: list[str]
) -> None:
    """Bind every patient (a superset of an earlier release, k or more apart, so the sets are
    not near), then drop in code all but one of the patients the earlier release left out: the
    table is the earlier one plus one patient. Nested sets have their declared sizes compared."""
    left_out = [*iris[20:25], *iris[45:54]]
    narrow, state = await run_train(
        inside, "narrow", "oncology", USERS[ALICE], stage_query(*left_out)
    )
    assert outcome(state) == RELEASED
    plus_one = without(set(left_out[:-1]))
    wide, state = await run_train(inside, "wide", "oncology", USERS[ALICE], stage_query(), plus_one)
    assert outcome(state) == HELD_BY_LEDGER
    view = (await outside.get(steward_url(wide), headers=bearer(STEWARD))).json()
    assert "Differencing (cohort size near oncology/narrow): Held" in view["findings"]
    download = await outside.get(result_url(wide), headers=bearer(ALICE))
    assert download.status_code == 404
    assert (await outside.get(result_url(narrow), headers=bearer(ALICE))).status_code == 200
