"""Attacker: a train that sends what the gateway cannot handle, hoping for a 500 and no record.

Every request past the rate limit is answered with a specific 4xx and leaves exactly one
audit record; requests over the rate limit leave none, so a flood cannot grow the chain
faster than the policy allows. Query texts are fuzzed, including ``GRAPH g:`` (an empty
local name), ``\\#`` escapes, ``\\u`` escapes and deep nesting.
"""

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_gateway_kit import external, gateway_store, internal, query_records, station
from stationkit import GRAPH, OTHER_GRAPH, bearer, example_query, register

from pht_contract.wire import SPARQL_PATH
from pht_station_api.state import StationState

__all__ = ["external", "gateway_store", "internal", "station"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
EMPTY_LOCAL_NAME = f"PREFIX g: <{OTHER_GRAPH}>\nSELECT * WHERE {{ GRAPH g: {{ ?s ?p ?o }} }}"
ALLOWED_EMPTY_LOCAL = (
    f"PREFIX g: <{GRAPH}>\nSELECT (COUNT(*) AS ?n) WHERE {{ GRAPH g: {{ ?s ?p ?o }} }}"
)
OPEN = {"query_mode": "AnyReadOnlyQuery", "queries_per_minute": 100_000}


async def test_graph_with_empty_local_name_is_checked_and_audited(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM], **OPEN)
    refused = await internal.post(
        SPARQL_PATH, data={"query": EMPTY_LOCAL_NAME}, headers=bearer(token)
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "GraphNotAllowed"
    allowed = await internal.post(
        SPARQL_PATH, data={"query": ALLOWED_EMPTY_LOCAL}, headers=bearer(token)
    )
    assert allowed.status_code == 200, allowed.text
    records = query_records(station, reg.uid)
    assert [r["reason"] for r in records] == ["GraphNotAllowed", "Answered"]
    assert all(isinstance(r["queryHash"], str) for r in records)


async def test_protocol_refusals_are_audited(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM], **OPEN)
    auth = bearer(token)
    attempts = [
        internal.get(SPARQL_PATH, headers=auth),
        internal.post(SPARQL_PATH, content=b"x", headers={**auth, "Content-Type": "text/plain"}),
        internal.post(
            SPARQL_PATH,
            content=b"DROP ALL",
            headers={**auth, "Content-Type": "application/sparql-update"},
        ),
        internal.post(
            SPARQL_PATH,
            content=b"\xff\xfe",
            headers={**auth, "Content-Type": "application/sparql-query"},
        ),
        internal.get(SPARQL_PATH, params=[("query", KM), ("query", KM)], headers=auth),
    ]
    reasons = []
    for attempt in attempts:
        response = await attempt
        assert 400 <= response.status_code < 500, response.text
        reasons.append(response.json()["reason"])
    assert reasons == [
        "MalformedQuery",
        "UnsupportedMediaType",
        "UpdateRefused",
        "MalformedQuery",
        "MalformedQuery",
    ]
    assert [r["reason"] for r in query_records(station, reg.uid)] == reasons


async def test_a_flood_over_the_rate_limit_does_not_grow_the_chain(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM], query_mode="AnyReadOnlyQuery", queries_per_minute=3)
    statuses = []
    for _ in range(12):
        response = await internal.post(
            SPARQL_PATH, data={"query": "nonsense"}, headers=bearer(token)
        )
        statuses.append(response.status_code)
    assert statuses.count(429) == 9 and statuses.count(400) == 3
    assert len(query_records(station, reg.uid)) == 3


WORDS = [
    "SELECT", "ASK", "CONSTRUCT", "WHERE", "{", "}", "(", ")", "?s", "?p", "?o", ".", ";",
    "GRAPH", "g:", "GRAPH g:", "PREFIX g: <urn:pht:graph:secret>", f"PREFIX x: <{GRAPH}>",
    "x:a\\#b", "x:\\#", "\\#", "#", "\n", "\\u0041", "\\U00000041", '"\\u0022"', "'''",
    "SERVICE", "FROM", "NAMED", "FILTER", "||", "+", "!", "OPTIONAL", "UNION", "VALUES",
    "{ { { { { { { {", "} } } } } } } }", "((((((((((", "))))))))))", "<urn:a>", "*", "\x00",
]  # fmt: skip
query_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join),
    st.integers(min_value=1, max_value=400).map(lambda n: "SELECT * WHERE " + "{" * n),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=query_texts, approved_only=st.booleans())
async def test_no_query_text_gets_a_500_or_escapes_the_audit(
    internal: httpx.AsyncClient, station: StationState, text: str, approved_only: bool
) -> None:
    mode = {"queries_per_minute": 100_000} if approved_only else OPEN
    token, reg = await register(internal, [KM], **mode)
    response = await internal.post(SPARQL_PATH, data={"query": text}, headers=bearer(token))
    assert response.status_code in (200, 400, 403, 406, 413, 422), response.text
    body = response.json()
    assert "Traceback" not in response.text
    records = query_records(station, reg.uid)
    assert len(records) == 1
    assert records[0]["reason"] == (body["reason"] if response.status_code != 200 else "Answered")
