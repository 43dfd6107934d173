"""Attacker: a train that occupies the query checkers so other trains' queries wait.

A train may have one query being checked at a time; a second one meanwhile is refused with a
retryable ``QueryCheckBusy``, also when the train abandoned the first request (its check still
runs until it ends or hits the deadline). Another train's query is still checked.
"""

import asyncio
import threading
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
SLOW_MARK = "# slow\n"


class SlowPool:
    """Checks texts marked slow for two seconds, as an expensive query would take."""

    def __init__(self, pool: ParsePool) -> None:
        self.pool = pool
        self.started = threading.Event()

    def analyse(self, job: ParseJob) -> Verdict:
        if job.text.startswith(SLOW_MARK):
            self.started.set()
            time.sleep(2)
        return self.pool.analyse(job)


async def test_one_check_per_train_even_after_an_abandoned_request(
    internal: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowPool(executions.POOL)
    monkeypatch.setattr(executions, "POOL", slow)
    hostile, _ = await register(internal, [KM], **OPEN)
    other, _ = await register(internal, [KM], **OPEN)
    abandoned = asyncio.create_task(
        internal.post(SPARQL_PATH, data={"query": SLOW_MARK + KM}, headers=bearer(hostile))
    )
    await asyncio.to_thread(slow.started.wait, 10)
    abandoned.cancel()
    second = await internal.post(
        SPARQL_PATH, data={"query": SLOW_MARK + "ASK {}"}, headers=bearer(hostile)
    )
    assert second.status_code == 429, second.text
    assert second.json()["reason"] == "QueryCheckBusy" and "Retry-After" in second.headers
    # Another train is not held up by the hostile one's check.
    answer = await internal.post(SPARQL_PATH, data={"query": "ASK {}"}, headers=bearer(other))
    assert answer.status_code == 200, answer.text
    await asyncio.sleep(2.5)  # the abandoned check ends; the train may check again
    again = await internal.post(
        SPARQL_PATH, data={"query": "ASK { ?s ?p ?o }"}, headers=bearer(hostile)
    )
    assert again.status_code == 200, again.text
