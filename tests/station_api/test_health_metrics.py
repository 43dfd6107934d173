"""Liveness, readiness and metrics on both listeners; bounded labels only."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stationkit import bearer, example_query, register

from pht_contract.wire import SPARQL_PATH

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")


async def test_health_and_readiness(
    internal: httpx.AsyncClient, external: httpx.AsyncClient
) -> None:
    for client in (internal, external):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_query_metrics_by_outcome_and_reason(
    internal: httpx.AsyncClient, external: httpx.AsyncClient
) -> None:
    # Open mode: approved-queries mode refuses an update unparsed, as QueryNotApproved.
    token, _ = await register(internal, [KM], query_mode="AnyReadOnlyQuery")
    await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    await internal.get(SPARQL_PATH, params={"query": "DROP ALL"}, headers=bearer(token))
    text = (await external.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    answered = samples[
        (
            "pht_gateway_queries_total",
            (("outcome", "answered"), ("reason", "Answered"), ("station", "test-station")),
        )
    ]
    refused = samples[
        (
            "pht_gateway_queries_total",
            (("outcome", "refused"), ("reason", "UpdateRefused"), ("station", "test-station")),
        )
    ]
    assert answered >= 1 and refused >= 1
    assert samples[("pht_store_up", (("station", "test-station"),))] == 1
    assert any(name == "pht_gateway_rows_bucket" for name, _ in samples)
    assert any(name == "pht_gateway_query_duration_seconds_count" for name, _ in samples)
    listeners = {
        dict(labels).get("listener") for name, labels in samples if name == "pht_api_requests_total"
    }
    assert {"internal", "external"} <= listeners
    # No query text, IRI or token ever becomes a label value.
    assert "LUNG1" not in text and "P100" not in text and token not in text
