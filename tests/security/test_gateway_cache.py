"""Attacker: a train that times the gateway to learn which queries other trains ran.

A parse cache shared across trains answers a query another train ran in milliseconds and an
unseen one in seconds. Analyses are cached per train only, so a train's first check of any
text costs a full analysis whatever other trains did.
"""

import time

import httpx
import pytest
from security_gateway_kit import external, gateway_store, internal, station
from stationkit import bearer, example_query, register

from pht_contract.wire import SPARQL_PATH
from pht_station_api.gateway import executions
from pht_station_api.gateway.parsing import ParsePool
from pht_station_api.gateway.verdicts import ParseJob, Verdict

__all__ = ["external", "gateway_store", "internal", "station"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
OPEN = {"query_mode": "AnyReadOnlyQuery", "queries_per_minute": 100_000}
#: Costs rdflib a noticeable, deterministic amount of work (an arithmetic chain).
SLOW = "SELECT * WHERE { ?s ?p ?o FILTER(?o = " + " + ".join(["1"] * 160) + ") } LIMIT 1"


class CountingPool:
    def __init__(self, pool: ParsePool) -> None:
        self.pool = pool
        self.texts: list[str] = []

    def analyse(self, job: ParseJob) -> Verdict:
        self.texts.append(job.text)
        return self.pool.analyse(job)


async def test_no_train_reuses_another_trains_analysis(
    internal: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingPool(executions.POOL)
    monkeypatch.setattr(executions, "POOL", counting)
    first, _ = await register(internal, [KM], **OPEN)
    second, _ = await register(internal, [KM], **OPEN)
    for token in (first, first, second):
        answer = await internal.post(SPARQL_PATH, data={"query": SLOW}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
    # The first train's repeat is served from its own cache; the second train pays in full.
    assert counting.texts.count(SLOW) == 2


async def test_a_query_another_train_ran_is_not_answered_faster(
    internal: httpx.AsyncClient,
) -> None:
    warm, _ = await register(internal, [KM], **OPEN)
    await internal.post(SPARQL_PATH, data={"query": "ASK {}"}, headers=bearer(warm))
    victim, _ = await register(internal, [KM], **OPEN)
    spy, _ = await register(internal, [KM], **OPEN)

    async def timed(token: str) -> float:
        started = time.perf_counter()
        answer = await internal.post(SPARQL_PATH, data={"query": SLOW}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        return time.perf_counter() - started

    victim_time = await timed(victim)
    spy_time = await timed(spy)
    repeat_time = await timed(spy)
    # A shared cache made the spy's first run as fast as a repeat; now it costs a full check.
    assert spy_time > 0.3 * victim_time
    assert spy_time > 2 * repeat_time
