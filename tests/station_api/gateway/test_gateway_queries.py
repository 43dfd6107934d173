"""The SPARQL gateway answers approved queries and refuses every other case specifically."""

import csv
import io
import json

import httpx
import pytest
from stationkit import (
    COHORT_PATIENTS,
    GRAPH,
    OTHER_GRAPH,
    bearer,
    example_query,
    register,
)

from pht_contract.wire import SPARQL_PATH
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
SUMMARY = example_query("cohort-summary")
JSON = {"Accept": "application/sparql-results+json"}


async def test_approved_query_answers_json_with_every_patient(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, [KM])
    response = await internal.get(
        SPARQL_PATH, params={"query": KM}, headers={**bearer(token), **JSON}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/sparql-results+json")
    rows = response.json()["results"]["bindings"]
    assert len(rows) == COHORT_PATIENTS
    assert {"patient", "stage", "days", "dead"} <= set(rows[0])


async def test_csv_and_tsv_and_xml_by_accept(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, [KM])
    csv_answer = await internal.post(
        SPARQL_PATH, data={"query": KM}, headers={**bearer(token), "Accept": "text/csv"}
    )
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(csv_answer.text)))
    assert table[0] == ["patient", "stage", "days", "dead"]
    assert len(table) == COHORT_PATIENTS + 1
    tsv = await internal.post(
        SPARQL_PATH,
        content=KM,
        headers={
            **bearer(token),
            "Content-Type": "application/sparql-query",
            "Accept": "text/tab-separated-values",
        },
    )
    assert tsv.status_code == 200 and tsv.text.count("\n") == COHORT_PATIENTS + 1
    xml = await internal.get(
        SPARQL_PATH,
        params={"query": KM},
        headers={**bearer(token), "Accept": "application/sparql-results+xml"},
    )
    assert xml.status_code == 200 and "<sparql" in xml.text


async def test_approved_query_runs_by_name_or_hash(internal: httpx.AsyncClient) -> None:
    token, reg = await register(internal, [KM])
    by_name = await internal.post(
        SPARQL_PATH, data={"query-name": "q0"}, headers={**bearer(token), **JSON}
    )
    assert by_name.status_code == 200, by_name.text
    assert len(by_name.json()["results"]["bindings"]) == COHORT_PATIENTS
    by_hash = await internal.get(
        SPARQL_PATH,
        params={"query-hash": reg.approved_query_hashes[0]},
        headers={**bearer(token), **JSON},
    )
    assert by_hash.status_code == 200, by_hash.text


async def test_reformatted_approved_text_is_not_parsed_but_refused(
    internal: httpx.AsyncClient,
) -> None:
    """Approved-queries mode never parses a train's text: only an exact copy or a name runs."""
    token, _ = await register(internal, [KM])
    reformatted = "# a comment\n" + KM.replace("\n", "\n   ").replace("SELECT", "select")
    response = await internal.get(SPARQL_PATH, params={"query": reformatted}, headers=bearer(token))
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == "QueryNotApproved"
    assert "query-name" in response.json()["message"]


@pytest.mark.parametrize(
    ("query", "reason", "status"),
    [
        ("INSERT DATA { <urn:a> <urn:b> <urn:c> }", "UpdateRefused", 403),
        ("DROP ALL", "UpdateRefused", 403),
        (
            "SELECT * WHERE { SERVICE <http://evil.example/sparql> { ?s ?p ?o } }",
            "ServiceRefused",
            403,
        ),
        ("SELECT * WHERE { ?e <urn:p> ?x . sErViCe ?e { ?s ?p ?o } }", "ServiceRefused", 403),
        (
            "SELECT * WHERE { { ?s ?p ?o } UNION { SERVICE SILENT <http://x/> { ?s ?p ?o } } }",
            "ServiceRefused",
            403,
        ),
        (f"SELECT * FROM <{OTHER_GRAPH}> WHERE {{ ?s ?p ?o }}", "GraphNotAllowed", 403),
        (
            f"SELECT * FROM NAMED <{OTHER_GRAPH}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
            "GraphNotAllowed",
            403,
        ),
        (f"SELECT * WHERE {{ GRAPH <{OTHER_GRAPH}> {{ ?s ?p ?o }} }}", "GraphNotAllowed", 403),
        ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "QueryNotAllowed", 403),
        ("SELECT * WHERE { ?s ?p ", "MalformedQuery", 400),
        # Parsers disagree on these; the text checked must be the text run (review finding).
        (
            "SELECT * WHERE { #\r SERVICE <http://127.0.0.1:9/x> { ?s ?p ?o } \n }",
            "MalformedQuery",
            400,
        ),
        (KM.replace("WHERE", "#\r ?p ?x ?o\nWHERE", 1), "MalformedQuery", 400),
        ("   ", "MalformedQuery", 400),
    ],
)
async def test_refusals_are_specific(
    internal: httpx.AsyncClient, query: str, reason: str, status: int
) -> None:
    """In open mode each bad text gets its own reason; approved mode refuses them unparsed."""
    token, _ = await register(internal, [KM], query_mode="AnyReadOnlyQuery")
    response = await internal.post(SPARQL_PATH, data={"query": query}, headers=bearer(token))
    assert response.status_code == status, response.text
    assert response.json()["reason"] == reason
    approved_only, _ = await register(internal, [KM])
    refused = await internal.post(SPARQL_PATH, data={"query": query}, headers=bearer(approved_only))
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "QueryNotApproved"


async def test_malformed_query_reports_line_and_column(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, [KM], query_mode="AnyReadOnlyQuery")
    response = await internal.get(
        SPARQL_PATH, params={"query": "SELECT ?x\nWHERE { ?x ?y }"}, headers=bearer(token)
    )
    assert response.status_code == 400
    body = response.json()
    assert body["reason"] == "MalformedQuery" and body["line"] == 2 and body["column"] >= 1


async def test_any_read_only_mode_and_graph_variable_sees_allowed_graphs_only(
    internal: httpx.AsyncClient,
) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery")
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    response = await internal.get(SPARQL_PATH, params={"query": query}, headers=bearer(token))
    assert response.status_code == 200, response.text
    graphs = {row["g"]["value"] for row in response.json()["results"]["bindings"]}
    assert graphs == {GRAPH}
    leak = "SELECT ?o WHERE { ?s <urn:secret:p> ?o }"
    response = await internal.get(SPARQL_PATH, params={"query": leak}, headers=bearer(token))
    assert response.status_code == 200 and response.json()["results"]["bindings"] == []


async def test_dataset_parameters_outside_policy_are_refused(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery")
    response = await internal.get(
        SPARQL_PATH,
        params={"query": "ASK { ?s ?p ?o }", "default-graph-uri": OTHER_GRAPH},
        headers=bearer(token),
    )
    assert response.status_code == 403 and response.json()["reason"] == "GraphNotAllowed"
    allowed = await internal.get(
        SPARQL_PATH,
        params={"query": "ASK { ?s ?p ?o }", "default-graph-uri": GRAPH},
        headers=bearer(token),
    )
    assert allowed.status_code == 200 and allowed.json()["boolean"] is True


async def test_row_cap_is_a_refusal_not_a_truncation(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, [KM], row_cap=10)
    response = await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert response.status_code == 422 and response.json()["reason"] == "RowCapExceeded"


async def test_minimum_distinct_patients(internal: httpx.AsyncClient) -> None:
    few = KM.rstrip().rstrip("}") + "} LIMIT 3"
    token, _ = await register(internal, [KM, few], min_distinct_patients=5)
    refused = await internal.get(SPARQL_PATH, params={"query": few}, headers=bearer(token))
    assert refused.status_code == 422 and refused.json()["reason"] == "TooFewPatients"
    answered = await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert answered.status_code == 200


async def test_query_size_cap(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery", max_query_bytes=256)
    query = "ASK { ?s ?p ?o } #" + "x" * 400
    response = await internal.post(SPARQL_PATH, data={"query": query}, headers=bearer(token))
    assert response.status_code == 413 and response.json()["reason"] == "RequestTooLarge"


async def test_rate_limit_per_token(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery", queries_per_minute=3)
    other, _ = await register(internal, query_mode="AnyReadOnlyQuery", queries_per_minute=3)
    statuses = [
        (
            await internal.get(SPARQL_PATH, params={"query": "ASK {}"}, headers=bearer(token))
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    fresh = await internal.get(SPARQL_PATH, params={"query": "ASK {}"}, headers=bearer(other))
    assert fresh.status_code == 200


async def test_unknown_revoked_and_expired_tokens_get_401(internal: httpx.AsyncClient) -> None:
    from datetime import timedelta

    from stationkit import operator_headers

    assert (await internal.get(SPARQL_PATH, params={"query": KM})).status_code == 401
    assert (
        await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer("nope"))
    ).status_code == 401
    token, reg = await register(internal, [KM])
    deleted = await internal.delete(f"/internal/v1/trains/{reg.uid}", headers=operator_headers())
    assert deleted.status_code == 204
    response = await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert response.status_code == 401
    expired, _ = await register(internal, [KM], expires_in=timedelta(seconds=-1))
    response = await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(expired))
    assert response.status_code == 401


async def test_every_query_is_audited_without_results(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [KM])
    await internal.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    await internal.get(SPARQL_PATH, params={"query": "DROP ALL"}, headers=bearer(token))
    records = [r for r in station.chain.records() if r.train_uid == reg.uid and r.kind == "query"]
    assert [r.details["outcome"] for r in records] == ["answered", "refused"]
    answered = records[0].details
    assert answered["rows"] == COHORT_PATIENTS and answered["distinctPatients"] == COHORT_PATIENTS
    assert answered["requesterOrganisation"] == "maastro" and answered["reason"] == "Answered"
    dump = json.dumps([r.details for r in records])
    assert "LUNG1-" not in dump and "patient/" not in dump
    train = station.registry.get(reg.uid)
    assert train is not None and train.max_distinct_patients == COHORT_PATIENTS
    assert train.queries_run == 1


async def test_unsupported_media_type_and_not_acceptable(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, [KM])
    response = await internal.post(
        SPARQL_PATH, content=KM, headers={**bearer(token), "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    response = await internal.get(
        SPARQL_PATH, params={"query": KM}, headers={**bearer(token), "Accept": "image/png"}
    )
    assert response.status_code == 406 and response.json()["reason"] == "NotAcceptable"


async def test_construct_when_the_policy_allows_it(internal: httpx.AsyncClient) -> None:
    token, _ = await register(
        internal, query_mode="AnyReadOnlyQuery", allow_construct_describe=True, row_cap=5000
    )
    query = (
        "PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#> "
        "CONSTRUCT { ?p a ncit:C16960 } WHERE { ?p a ncit:C16960 }"
    )
    response = await internal.get(
        SPARQL_PATH, params={"query": query}, headers={**bearer(token), "Accept": "text/turtle"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/turtle")
    assert response.text.count("C16960") >= COHORT_PATIENTS
    capped, _ = await register(
        internal, query_mode="AnyReadOnlyQuery", allow_construct_describe=True, row_cap=10
    )
    refused = await internal.get(SPARQL_PATH, params={"query": query}, headers=bearer(capped))
    assert refused.status_code == 422 and refused.json()["reason"] == "RowCapExceeded"


async def test_request_body_cap_before_parsing(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery")
    huge = "ASK {}" + " " * (1_048_576 + 10)
    response = await internal.post(
        SPARQL_PATH,
        content=huge,
        headers={**bearer(token), "Content-Type": "application/sparql-query"},
    )
    assert response.status_code == 413 and response.json()["reason"] == "RequestTooLarge"


async def test_protocol_edges(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, query_mode="AnyReadOnlyQuery")
    two = await internal.get(
        SPARQL_PATH + "?query=ASK%20%7B%7D&query=ASK%20%7B%7D", headers=bearer(token)
    )
    assert two.status_code == 400 and two.json()["reason"] == "MalformedQuery"
    missing = await internal.get(SPARQL_PATH, headers=bearer(token))
    assert missing.status_code == 400 and missing.json()["reason"] == "MalformedQuery"
    form_update = await internal.post(
        SPARQL_PATH, data={"update": "CLEAR ALL"}, headers=bearer(token)
    )
    assert form_update.status_code == 403 and form_update.json()["reason"] == "UpdateRefused"
    update_body = await internal.post(
        SPARQL_PATH,
        content="CLEAR ALL",
        headers={**bearer(token), "Content-Type": "application/sparql-update"},
    )
    assert update_body.status_code == 403 and update_body.json()["reason"] == "UpdateRefused"
    form_dataset = await internal.post(
        SPARQL_PATH,
        data={"query": "ASK { ?s ?p ?o }", "named-graph-uri": OTHER_GRAPH},
        headers=bearer(token),
    )
    assert form_dataset.status_code == 403 and form_dataset.json()["reason"] == "GraphNotAllowed"
    not_utf8 = await internal.post(
        SPARQL_PATH,
        content=b"ASK {\xff}",
        headers={**bearer(token), "Content-Type": "application/sparql-query"},
    )
    assert not_utf8.status_code == 400
