"""Aggregates a real station computes when a run ends: released whatever the image, equal to a
direct computation on the store, audited under the station's name, never from the train."""

import secrets
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyoxigraph
import pytest
import pytest_asyncio
from stationkit import (
    COHORT_PATIENTS,
    COHORT_SEED,
    GRAPH,
    bearer,
    client_for,
    example_query,
    operator_headers,
    registration,
    started_station,
    station_settings,
)
from test_result_routes import REQUESTER, _identities

from pht_contract.aggregates import AggregateSpec
from pht_contract.wire import (
    RESULT_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TrainRegistration,
)
from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.cohorts import cohort_bytes
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
LOGREG = example_query("federated-logreg")
UNREVIEWED = "ghcr.io/pht-station/trains/station-aggregates:0.1.0@sha256:" + "5" * 64
DONE = {"jobSucceeded": True, "reason": "RunCompleted"}
STAGE_COUNTS = {"name": "stages", "query": "q0", "kind": "Count", "by": ["stage"]}
SURVIVAL = {
    "name": "overall",
    "query": "q0",
    "kind": "KaplanMeier",
    "survival": {"time": "days", "event": "dead"},
    "grid": {"stepDays": 365, "endDays": 1825},
}
ROUND = {
    "name": "round",
    "query": "q0",
    "kind": "GlmRound",
    "family": "Binomial",
    "horizonOutcome": {"survival": {"time": "days", "event": "dead"}, "horizonDays": 730},
    "covariates": [{"variable": "age", "centre": 70, "scale": 10}],
    "coefficients": {"parameter": "beta", "maxAbs": 5},
}


# A station of its own per test: results over the same patients are compared with each other
# (linked tables), so one test's released result must not hold the next one's.
@pytest_asyncio.fixture(loop_scope="module")
async def station(cohort_store: Path, tmp_path: Path) -> AsyncIterator[StationState]:
    settings = station_settings(cohort_store, tmp_path, local_identities_file=_identities(tmp_path))
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(loop_scope="module")
async def inside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def outside(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_external_app(station), "http://fdp.test") as client:
        yield client


async def run(
    inside: httpx.AsyncClient,
    query: str,
    aggregates: list[dict[str, Any]],
    parameters: str | None = None,
    upload: dict[str, Any] | None = None,
    **policy_changes: Any,
) -> tuple[TrainRegistration, dict[str, Any]]:
    """Register a train that declares ``aggregates``, let it (maybe) upload, end its run."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [query])
    policy = reg.policy
    if policy_changes:
        disclosure = policy.disclosure.model_copy(update=policy_changes)
        policy = policy.model_copy(update={"disclosure": disclosure})
    reg = reg.model_copy(
        update={
            "image": UNREVIEWED,
            "policy": policy,
            "aggregates": [AggregateSpec.model_validate(a) for a in aggregates],
            "parameters": parameters,
        }
    )
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    if upload is not None:
        sent = await inside.put(RESULT_PATH, json=upload, headers=bearer(token))
        assert sent.status_code == 201, sent.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    assert done.status_code == 200, done.text
    return reg, done.json()


def rows_of(query: str) -> list[dict[str, Any]]:
    """The query's answer straight from a store of the same cohort, one row per patient."""
    store = pyoxigraph.Store()
    store.load(
        cohort_bytes(COHORT_PATIENTS, COHORT_SEED),
        format=pyoxigraph.RdfFormat.N_TRIPLES,
        to_graph=pyoxigraph.NamedNode(GRAPH),
    )
    seen: dict[str, dict[str, Any]] = {}
    solutions = store.query(query, default_graph=pyoxigraph.NamedNode(GRAPH))
    assert isinstance(solutions, pyoxigraph.QuerySolutions)
    names = [variable.value for variable in solutions.variables]
    for solution in solutions:
        row = {name: solution[name].value for name in names if solution[name] is not None}
        seen.setdefault(row["patient"], row)
    return list(seen.values())


async def test_counts_leave_without_a_steward_and_equal_the_store(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    reg, state = await run(inside, KM, [STAGE_COUNTS])
    assert state["release"] == "Released", state
    download = await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    assert download.status_code == 200, download.text
    result = download.json()
    assert result.get("tables", []) == []
    (counts,) = result["aggregates"]
    assert counts["status"] == "Released"
    direct = Counter(row["stage"] for row in rows_of(KM))
    released = {row[0]: row[1] for row in counts["table"]["rows"] if row[1] is not None}
    assert released, "every stage count was suppressed"
    for stage, count in released.items():
        assert count == direct[stage]
    for emptied in counts["suppressed"]:
        stage_row = counts["table"]["rows"][emptied["row"]]
        assert stage_row[1] is None
    # The CSV export finds a station-computed table by its aggregate's name.
    csv = await outside.get(
        f"/results/{reg.namespace}/{reg.name}/tables/stages", headers=bearer(REQUESTER)
    )
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "stage,patients"


async def test_a_survival_curve_leaves_without_a_steward_and_equals_the_store(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    reg, state = await run(inside, KM, [SURVIVAL])
    assert state["release"] == "Released", state
    result = (
        await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    ).json()
    (curve,) = result["aggregates"]
    rows = rows_of(KM)
    for day, at_risk, *_ in curve["table"]["rows"]:
        if at_risk is not None:
            assert at_risk == sum(1 for row in rows if float(row["days"]) > day)


async def test_tables_side_by_side_with_suppressed_cells_wait_for_a_steward(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    # A count by stage beside a survival curve: what one suppressed, the other's margins could
    # give back (an overall curve tells the cohort, the curves and counts the groups).
    reg, state = await run(inside, KM, [STAGE_COUNTS, SURVIVAL])
    assert (state["release"], state["rule"]) == ("Held", "Differencing"), state
    release = next(r for r in station.chain.story(reg.uid) if r.kind == "release")
    assert "Differencing (linked tables): Held" in str(release.details["findings"])


async def test_other_tables_over_the_same_patients_later_wait_for_a_steward(
    inside: httpx.AsyncClient,
) -> None:
    # Two Trains, each one table: a cross-table with a suppressed cell, then the one-way table
    # that is its margin. The second is held; the same table again (a re-run) is not.
    _, state = await run(inside, KM, [{**STAGE_COUNTS, "by": ["stage", "sex"]}])
    assert state["release"] == "Released", state
    _, state = await run(inside, KM, [{**STAGE_COUNTS, "by": ["stage", "sex"]}])
    assert state["release"] == "Released", state
    _, state = await run(inside, KM, [STAGE_COUNTS])
    assert (state["release"], state["rule"]) == ("Held", "Differencing"), state


async def test_the_station_asks_the_approved_query_itself_and_says_so(
    inside: httpx.AsyncClient, station: StationState
) -> None:
    reg, _ = await run(inside, KM, [STAGE_COUNTS])
    story = station.chain.story(reg.uid)
    asked = [r for r in story if r.kind == "query"]
    assert [r.actor for r in asked] == ["station:aggregates"]
    assert asked[0].details["outcome"] == "answered"
    assert asked[0].details["distinctPatients"] == len(rows_of(KM))
    release = next(r for r in story if r.kind == "release")
    assert release.details["aggregates"] == "stages: Released" or release.details[
        "aggregates"
    ].startswith("stages: Released (")


async def test_a_model_round_equals_the_gradient_computed_directly(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    beta = np.array([0.3, -0.2])
    reg, state = await run(
        inside, LOGREG, [ROUND], parameters='{"beta": {"intercept": 0.3, "age": -0.2}}'
    )
    assert state["release"] == "Released", state
    result = (
        await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    ).json()
    model = result["aggregates"][0]["model"]
    xs, ys = [], []
    for row in rows_of(LOGREG):
        days, dead = float(row["days"]), row["dead"].endswith("C28554")
        if days < 730 and not dead:
            continue  # censored before the horizon: outcome unknown
        if "age" not in row:
            continue
        xs.append([1.0, (float(row["age"]) - 70) / 10])
        ys.append(1.0 if days >= 730 else 0.0)
    x, y = np.array(xs), np.array(ys)
    p = 1 / (1 + np.exp(-(x @ beta)))
    assert model["n"] == len(y)
    assert np.allclose(model["gradient"], x.T @ (y - p), rtol=0, atol=1e-9)
    assert np.allclose(model["hessian"], -(x.T * (p * (1 - p))) @ x, rtol=0, atol=1e-9)


async def test_coefficients_beyond_the_approved_bound_release_nothing_of_the_round(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    reg, _ = await run(inside, LOGREG, [ROUND], parameters='{"beta": {"age": 400}}')
    result = (
        await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    ).json()
    (round_,) = result["aggregates"]
    assert round_["status"] == "Withheld" and round_["rule"] == "CoefficientsOutOfBounds"
    assert round_.get("model") is None


async def test_an_upload_beside_the_aggregates_still_waits_for_a_steward(
    inside: httpx.AsyncClient,
) -> None:
    chosen = {
        "statistics": [{"name": "anything_the_code_chose", "value": 42.0, "n": 50}],
    }
    _, state = await run(inside, KM, [STAGE_COUNTS], upload=chosen)
    assert state["release"] == "Held" and state["rule"] == "StewardReviewRequired"


async def test_an_aggregate_over_too_few_patients_fails_without_failing_the_others(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    reg, state = await run(inside, KM, [STAGE_COUNTS, SURVIVAL], min_cohort=COHORT_PATIENTS * 2)
    # Nothing was computed that could be laid side by side: released (with nothing in it).
    assert state["release"] == "Released", state
    result = (
        await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    ).json()
    assert [(a["status"], a["rule"]) for a in result["aggregates"]] == [
        ("Withheld", "MinCohort"),
        ("Withheld", "MinCohort"),
    ]


MINTED = """PREFIX roo: <http://www.cancerdata.org/roo/>
PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#>
SELECT ?patient ?stage WHERE {
  ?real a ncit:C16960 ; roo:P100029 ?tumour .
  ?tumour roo:P100219 ?stage .
  VALUES ?copy { "a" "b" "c" "d" "e" }
  BIND(IRI(CONCAT(STR(?real), "/copy-", ?copy)) AS ?patient)
}"""


async def test_a_query_that_mints_patient_iris_cannot_count_a_patient_five_times(
    inside: httpx.AsyncClient, outside: httpx.AsyncClient
) -> None:
    # Five minted IRIs per real patient would lift a group of one past a threshold of five:
    # only IRIs the store knows as patients count, so the minted rows count for nobody.
    reg, _ = await run(inside, MINTED, [STAGE_COUNTS])
    result = (
        await outside.get(f"/results/{reg.namespace}/{reg.name}", headers=bearer(REQUESTER))
    ).json()
    (counts,) = result["aggregates"]
    assert counts.get("table") is None, counts
    assert (counts["status"], counts["rule"]) in {
        ("Withheld", "NoPatients"),
        ("Failed", "QueryNotAllowed"),
    }
