"""Attacker: a train that wants to run a query other than the one the steward approved.

The steward approves a text; approval is recorded as its normalised hash. A train that sends
a different text with the same hash (comments, a ``\\#`` the normaliser once read as a
comment) must not get that text run: in approved-queries mode the station runs the stored
approved text, chosen by name or hash, and never parses what the train sends.
"""

import httpx
import pytest
from security_gateway_kit import external, gateway_store, internal, query_records, station
from stationkit import COHORT_PATIENTS, bearer, operator_headers, register, registration

from pht_contract.sparql import query_hash
from pht_contract.wire import SPARQL_PATH, TRAIN_REGISTRATION_PATH, ApprovedQuery
from pht_station_api.state import StationState

__all__ = ["external", "gateway_store", "internal", "station"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

PATIENT = "<http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C16960>"
#: What the steward approved: one number for the whole cohort.
AGGREGATE = f"PREFIX ex: <urn:pht:x:>\nSELECT (COUNT(?p) AS ?n) WHERE {{ ?p a {PATIENT} }}"
#: What the attacker would rather run: one row per patient.
PER_PATIENT = f"PREFIX ex: <urn:pht:x:>\nSELECT ?p WHERE {{ ?p a {PATIENT} }}"
JSON = {"Accept": "application/sparql-results+json"}


async def test_same_hash_other_text_is_refused_unparsed(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    token, reg = await register(internal, [AGGREGATE])
    variant = AGGREGATE + "\n# the steward never read this line"
    assert query_hash(variant) == query_hash(AGGREGATE)  # the hash alone cannot tell them apart
    response = await internal.post(SPARQL_PATH, data={"query": variant}, headers=bearer(token))
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == "QueryNotApproved"
    # Refused before any analysis: the audit cannot even name a hash for it.
    assert query_records(station, reg.uid)[-1]["queryHash"] is None


async def test_a_named_query_runs_the_stored_text_not_the_trains(
    internal: httpx.AsyncClient,
) -> None:
    token, _ = await register(internal, [AGGREGATE])
    answer = await internal.post(
        SPARQL_PATH, data={"query-name": "q0"}, headers={**bearer(token), **JSON}
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["results"]["bindings"]
    assert len(rows) == 1 and int(rows[0]["n"]["value"]) == COHORT_PATIENTS
    # Sending the per-patient text as well as the name is refused, not merged.
    both = await internal.post(
        SPARQL_PATH, data={"query-name": "q0", "query": PER_PATIENT}, headers=bearer(token)
    )
    assert both.status_code == 400 and both.json()["reason"] == "MalformedQuery"
    other = await internal.post(
        SPARQL_PATH, data={"query": PER_PATIENT}, headers={**bearer(token), **JSON}
    )
    assert other.status_code == 403 and other.json()["reason"] == "QueryNotApproved"


async def test_an_unknown_name_or_hash_is_refused(internal: httpx.AsyncClient) -> None:
    token, _ = await register(internal, [AGGREGATE])
    for params in ({"query-name": "rows"}, {"query-hash": query_hash(PER_PATIENT)}):
        response = await internal.get(SPARQL_PATH, params=params, headers=bearer(token))
        assert response.status_code == 403, response.text
        assert response.json()["reason"] == "QueryNotApproved"


async def test_registration_refuses_a_stored_text_its_hash_does_not_cover(
    internal: httpx.AsyncClient,
) -> None:
    """The operator's payload is checked too: a stored text must be the approved one."""
    reg = registration("swap-token", [AGGREGATE])
    swapped = reg.model_copy(
        update={
            "approved_queries": [
                ApprovedQuery(name="q0", sparql=PER_PATIENT, hash=query_hash(AGGREGATE))
            ]
        }
    )
    response = await internal.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid),
        json=swapped.wire(),
        headers=operator_headers(),
    )
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "InvalidRegistration"


async def test_open_mode_runs_the_reserialised_parse_not_the_trains_bytes(
    internal: httpx.AsyncClient, station: StationState
) -> None:
    """A comment that another parser might read differently never reaches the store."""
    token, _ = await register(internal, [AGGREGATE], query_mode="AnyReadOnlyQuery")
    seen: list[str] = []
    original = station.store.query

    async def spy(job, timeout):  # type: ignore[no-untyped-def]
        seen.append(job.query)
        return await original(job, timeout)

    station.store.query = spy  # type: ignore[method-assign]
    try:
        text = AGGREGATE.replace("WHERE", "# a comment the store never sees\nWHERE")
        answer = await internal.post(
            SPARQL_PATH, data={"query": text}, headers={**bearer(token), **JSON}
        )
    finally:
        station.store.query = original  # type: ignore[method-assign]
    assert answer.status_code == 200, answer.text
    assert seen and "comment" not in seen[0]
    assert seen[0] != text
