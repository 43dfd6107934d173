"""Timeouts really stop the query (the worker process is killed); loading through the API."""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from stationkit import bearer, client_for, make_store, operator_headers, register, station_settings

from pht_contract.wire import SPARQL_PATH
from pht_station_api.app import create_internal_app
from pht_station_api.cohorts import cohort_bytes
from pht_station_api.state import StationState, build_state
from pht_station_api.triplestores.loading import StoreLocked, load_rdf, writer_lock

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
COUNT_PATIENTS = (
    "PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#> "
    "SELECT (COUNT(?p) AS ?n) WHERE { ?p a ncit:C16960 }"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def own_station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StationState]:
    """A station on its own store: this module loads data into it."""
    store = make_store(tmp_path_factory.mktemp("own") / "store", patients=20)
    state = build_state(station_settings(store, tmp_path_factory.mktemp("own-state")))
    await state.start()
    try:
        yield state
    finally:
        await state.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(own_station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(own_station), "http://internal.test") as c:
        yield c


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped is a zombie: count it as dead.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.timeout(60)
async def test_timeout_kills_the_worker_and_the_pool_recovers(
    client: httpx.AsyncClient, own_station: StationState
) -> None:
    token, _ = await register(client, query_mode="AnyReadOnlyQuery", query_timeout_seconds=1)
    before = own_station.store.pool.pids()
    started = asyncio.get_running_loop().time()
    response = await client.get(SPARQL_PATH, params={"query": SLOW}, headers=bearer(token))
    elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 504, response.text
    assert response.json()["reason"] == "QueryTimeout"
    assert elapsed < 10
    await asyncio.sleep(0.5)
    assert not any(alive(pid) for pid in before)
    again = await client.get(SPARQL_PATH, params={"query": "ASK {}"}, headers=bearer(token))
    assert again.status_code == 200
    assert own_station.store.pool.pids() != before


async def test_load_through_the_api_is_visible_to_queries(
    client: httpx.AsyncClient, own_station: StationState
) -> None:
    token, _ = await register(client, query_mode="AnyReadOnlyQuery")
    first = await client.get(SPARQL_PATH, params={"query": COUNT_PATIENTS}, headers=bearer(token))
    before = int(first.json()["results"]["bindings"][0]["n"]["value"])
    more = cohort_bytes(5, seed=99, hospital=2)
    loaded = await client.post(
        "/internal/v1/graphs",
        content=more,
        headers={**operator_headers(), "Content-Type": "application/n-triples"},
    )
    assert loaded.status_code == 200, loaded.text
    after = await client.get(SPARQL_PATH, params={"query": COUNT_PATIENTS}, headers=bearer(token))
    assert int(after.json()["results"]["bindings"][0]["n"]["value"]) == before + 5


async def test_load_refuses_bad_input_and_other_callers(client: httpx.AsyncClient) -> None:
    token, _ = await register(client, query_mode="AnyReadOnlyQuery")
    as_train = await client.post(
        "/internal/v1/graphs",
        content=b"<urn:a> <urn:b> <urn:c> .",
        headers={**bearer(token), "Content-Type": "application/n-triples"},
    )
    assert as_train.status_code == 401
    broken = await client.post(
        "/internal/v1/graphs",
        content=b"<urn:a> <urn:b> .",
        headers={**operator_headers(), "Content-Type": "application/n-triples"},
    )
    assert broken.status_code == 400 and broken.json()["reason"] == "LoadFailed"
    wrong_type = await client.post(
        "/internal/v1/graphs",
        content=b"x",
        headers={**operator_headers(), "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415


async def test_a_second_writer_fails_fast(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with writer_lock(store), pytest.raises(StoreLocked), writer_lock(store):
        pass
    import io

    count = load_rdf(store, io.BytesIO(b"<urn:a> <urn:b> <urn:c> .\n"), "ntriples", "urn:g")
    assert count == 1


async def test_a_fresh_volume_gets_an_empty_store(tmp_path: Path) -> None:
    state = build_state(station_settings(tmp_path / "fresh-store", tmp_path / "state"))
    await state.start()
    try:
        assert await state.store.ping()
        figures = await state.store.statistics(("urn:pht:graph:lung1",))
        assert figures.triples == 0
    finally:
        await state.close()
