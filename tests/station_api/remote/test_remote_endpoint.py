"""The gateway in front of a real external SPARQL server over HTTP (oxigraph serve-read-only).

The hospital's own endpoint gets the query re-serialised from the parse and the explicit
dataset as SPARQL protocol parameters; the same refusals and guards apply.
"""

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from stationkit import (
    COHORT_PATIENTS,
    GRAPH,
    bearer,
    client_for,
    example_query,
    make_store,
    register,
    station_settings,
)

from pht_contract.wire import SPARQL_PATH
from pht_station_api.app import create_internal_app
from pht_station_api.gateway.reserialisations import reserialise
from pht_station_api.state import StationState, build_state

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

KM = example_query("kaplan-meier")
OXIGRAPH = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(OXIGRAPH).exists():
        pytest.skip("the oxigraph CLI (PyPI 'oxigraph') is not installed")
    store = make_store(tmp_path_factory.mktemp("remote") / "store")
    port = free_port()
    server = subprocess.Popen(
        [OXIGRAPH, "serve-read-only", "--location", str(store), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/query"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, params={"query": "ASK {}"}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("oxigraph serve-read-only did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote_station(
    endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    settings = station_settings(
        None, tmp_path_factory.mktemp("remote-state"), sparql_endpoint=endpoint
    )
    state = build_state(settings)
    await state.start()
    try:
        yield state
    finally:
        await state.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(remote_station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(remote_station), "http://internal.test") as c:
        yield c


async def test_approved_query_through_the_remote_endpoint(
    client: httpx.AsyncClient, remote_station: StationState
) -> None:
    token, reg = await register(client, [KM])
    response = await client.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]["bindings"]) == COHORT_PATIENTS
    as_csv = await client.get(
        SPARQL_PATH, params={"query": KM}, headers={**bearer(token), "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200 and as_csv.text.count("\r\n") == COHORT_PATIENTS + 1
    train = remote_station.registry.get(reg.uid)
    assert train is not None and train.max_distinct_patients == COHORT_PATIENTS


async def test_remote_dataset_is_the_policy_not_the_server(client: httpx.AsyncClient) -> None:
    token, _ = await register(client, query_mode="AnyReadOnlyQuery")
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    response = await client.get(SPARQL_PATH, params={"query": query}, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert {r["g"]["value"] for r in response.json()["results"]["bindings"]} == {GRAPH}
    leak = "ASK { ?s <urn:secret:p> ?o }"
    response = await client.get(SPARQL_PATH, params={"query": leak}, headers=bearer(token))
    assert response.status_code == 200 and response.json()["boolean"] is False
    refused = await client.get(
        SPARQL_PATH,
        params={"query": "SELECT * WHERE { SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } }"},
        headers=bearer(token),
    )
    assert refused.status_code == 403 and refused.json()["reason"] == "ServiceRefused"


async def test_row_cap_applies_to_the_remote_answer(client: httpx.AsyncClient) -> None:
    token, _ = await register(client, [KM], row_cap=5)
    response = await client.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert response.status_code == 422 and response.json()["reason"] == "RowCapExceeded"


async def test_reserialisation_drops_comments_and_keeps_meaning() -> None:
    text = "# smuggled comment\nPREFIX x: <urn:x:>\nSELECT ?s WHERE { ?s x:p 'a' } # tail"
    rebuilt = reserialise(text, "SELECT")
    assert "#" not in rebuilt and "smuggled" not in rebuilt and "<urn:x:p>" in rebuilt
    ask = reserialise("PREFIX x: <urn:x:> ASK { ?s x:p ?o } # smuggled", "ASK")
    assert ask == "ASK {?s <urn:x:p> ?o.}"
    construct = reserialise("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } # smuggled", "CONSTRUCT")
    assert "smuggled" not in construct and construct.startswith("CONSTRUCT")


async def test_construct_through_the_remote_endpoint(client: httpx.AsyncClient) -> None:
    token, _ = await register(
        client, query_mode="AnyReadOnlyQuery", allow_construct_describe=True, row_cap=1000
    )
    query = (
        "PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#> "
        "CONSTRUCT { ?p a ncit:C16960 } WHERE { ?p a ncit:C16960 }"
    )
    response = await client.get(
        SPARQL_PATH, params={"query": query}, headers={**bearer(token), "Accept": "text/turtle"}
    )
    assert response.status_code == 200, response.text
    assert response.text.count("C16960") >= COHORT_PATIENTS
