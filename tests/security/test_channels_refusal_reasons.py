"""A train signals through the refusal reasons of the query counter; an operator's Prometheus
(or whoever can read it) receives the bits.

The attack: the query counter once carried a ``reason`` label, so a run could pick, per request,
one of some twenty refusal reasons (an update, a SERVICE clause, a forbidden graph, ...) and the
counts per reason at the next snapshot carried many bits per tick instead of one count. Against a
real station API: refusals of every kind land in one refused counter, no series names a reason,
and two different mixes of reasons with the same total look identical to the scraper.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from security_channels_kit import bearer, make_store  # puts stationkit on the path
from stationkit import client_for, register, started_station, station_settings

from pht_contract.wire import SPARQL_PATH
from pht_station_api.app import create_internal_app, create_metrics_app
from pht_station_api.state import StationState

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

SCRAPE_TOKEN = "channels-reasons-scrape-token"
#: Queries the open-mode gateway refuses, each with a different reason.
REFUSED = {
    "UpdateRefused": "CLEAR ALL",
    "ServiceRefused": "SELECT * WHERE { SERVICE <http://x/> { ?s ?p ?o } }",
    "GraphNotAllowed": "SELECT * FROM <urn:pht:graph:secret> WHERE { ?s ?p ?o }",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StationState]:
    root: Path = tmp_path_factory.mktemp("channels-reasons")
    settings = station_settings(
        make_store(root / "store", patients=5), root / "state", metrics_token=SCRAPE_TOKEN
    )
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def inside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


async def _send(inside: httpx.AsyncClient, token: str, reasons: list[str]) -> None:
    for reason in reasons:
        refused = await inside.post(
            SPARQL_PATH, data={"query": REFUSED[reason]}, headers=bearer(token)
        )
        assert (refused.status_code, refused.json()["reason"]) == (403, reason)


async def _query_series(station: StationState) -> dict[tuple[tuple[str, str], ...], float]:
    """The query counter as a scraper sees it (the live registry: no snapshot tick to wait)."""
    async with client_for(create_metrics_app(station), "http://metrics.test") as scraper:
        text = (await scraper.get("/metrics", headers=bearer(SCRAPE_TOKEN))).text
    assert not any(reason in text for reason in REFUSED)
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "pht_gateway_queries_total"
    }


async def test_refusal_reasons_chosen_by_a_train_are_not_exposed(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    token, _ = await register(inside, query_mode="AnyReadOnlyQuery")
    start = await _query_series(station)
    await _send(inside, token, ["UpdateRefused"] * 3 + ["ServiceRefused"] * 2 + ["GraphNotAllowed"])
    one_mix = await _query_series(station)
    assert all({name for name, _ in labels} <= {"station", "outcome"} for labels in one_mix)
    refused = [labels for labels in one_mix if ("outcome", "refused") in labels]
    assert len(refused) == 1
    assert one_mix[refused[0]] - start.get(refused[0], 0.0) == 6
    # Another mix of reasons with the same total moves the exposition exactly as much.
    await _send(inside, token, ["GraphNotAllowed"] * 6)
    other_mix = await _query_series(station)
    assert set(other_mix) == set(one_mix)
    assert {k: v - one_mix[k] for k, v in other_mix.items()} == {
        k: (6.0 if k == refused[0] else 0.0) for k in one_mix
    }
