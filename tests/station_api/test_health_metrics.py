"""Liveness and readiness on both listeners; metrics on their own, token-guarded listener."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from stationkit import (
    bearer,
    client_for,
    example_query,
    register,
    started_station,
    station_settings,
)

from pht_contract.wire import SPARQL_PATH
from pht_station_api.app import create_metrics_app
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
SCRAPE_TOKEN = "scrape-token-for-tests"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(
    cohort_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    settings = station_settings(
        cohort_store, tmp_path_factory.mktemp("state"), metrics_token=SCRAPE_TOKEN
    )
    async with started_station(settings) as state:
        yield state


async def test_health_and_readiness(
    internal: httpx.AsyncClient, external: httpx.AsyncClient
) -> None:
    for client in (internal, external):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_query_metrics_by_outcome(internal: httpx.AsyncClient, station: StationState) -> None:
    # Open mode: approved-queries mode refuses an update unparsed, as QueryNotApproved.
    token, _ = await register(internal, [KM], query_mode="AnyReadOnlyQuery")
    await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    await internal.get(SPARQL_PATH, params={"query": "DROP ALL"}, headers=bearer(token))
    async with client_for(create_metrics_app(station), "http://metrics.test") as scraper:
        answer = await scraper.get("/metrics", headers=bearer(SCRAPE_TOKEN))
    assert answer.status_code == 200
    text = answer.text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    answered = samples[
        (
            "pht_gateway_queries_total",
            (("outcome", "answered"), ("station", "test-station")),
        )
    ]
    refused = samples[
        (
            "pht_gateway_queries_total",
            (("outcome", "refused"), ("station", "test-station")),
        )
    ]
    assert answered >= 1 and refused >= 1
    assert samples[("pht_store_up", (("station", "test-station"),))] == 1
    assert any(name == "pht_gateway_rows_bucket" for name, _ in samples)
    assert any(name == "pht_gateway_query_duration_seconds_count" for name, _ in samples)
    # No per-request counter: a train could move it at the resolution of one request.
    assert not any(name.startswith("pht_api_requests") for name, _ in samples)
    # No query text, IRI or token ever becomes a label value.
    assert "LUNG1" not in text and "P100" not in text and token not in text


async def test_neither_train_nor_public_listener_serves_metrics(
    internal: httpx.AsyncClient, external: httpx.AsyncClient
) -> None:
    for client in (internal, external):
        answer = await client.get("/metrics")
        assert answer.status_code == 404
        assert "pht_gateway" not in answer.text
