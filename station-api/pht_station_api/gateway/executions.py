"""Run one train's query end to end: select, analyse off the loop, check, execute, audit.

Every request that passes the rate limit — answered, refused or failed, including a request
the protocol layer refuses — becomes one provenance record with the train, the requester's
organisation, the query hash (when it parses), the outcome and reason, rows, duration and
distinct patients. Never the answer itself and never the query text: the hash identifies it
against the approved queries. The rate limit comes first, so a flood cannot grow the
provenance chain faster than the policy's queries per minute.

Analysis runs in a worker process (:mod:`.parsing`) with a deadline; a train may have one
analysis in flight at a time and the station a bounded number, so no query text can hold the
event loop that serves both listeners.
"""

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from pht_contract.wire import DetailValue, ProvenanceKind
from pht_station_api import errors
from pht_station_api.errors import (
    QueryCheckBusy,
    QueryNotAllowed,
    StationApiError,
    StoreUnavailable,
    TooFewPatients,
)
from pht_station_api.gateway.checks import (
    CheckedQuery,
    Selection,
    VerdictCache,
    check_query,
    job_for,
    select_text,
)
from pht_station_api.gateway.formats import MEDIA_TYPE_OF, negotiate
from pht_station_api.gateway.parsing import POOL
from pht_station_api.gateway.verdicts import ParseJob, Verdict
from pht_station_api.registry import RegisteredTrain
from pht_station_api.state import StationState
from pht_station_api.triplestores.jobs import QueryJob


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str
    rows: int
    #: The patient IRIs the answer binds (typed ``ncit:C16960`` in the allowed graphs); kept out
    #: of ``repr`` so an answer that reaches a log carries none.
    patients: frozenset[bytes] = field(default=frozenset(), repr=False)


log = logging.getLogger(__name__)

#: Analyses one train may have in flight, and the whole station (beyond: a retryable 429).
ANALYSES_PER_TRAIN: Final = 1
ANALYSES_IN_FLIGHT: Final = 8

_cache = VerdictCache()
_threads = ThreadPoolExecutor(max_workers=ANALYSES_IN_FLIGHT, thread_name_prefix="pht-check")
_lock = threading.Lock()
_in_flight: dict[str, int] = {}


@dataclass(frozen=True)
class QueryRequest:
    #: The train's own text (``query``), or ``None`` when it names an approved query.
    text: str | None
    accept: str | None
    default_graph_uris: list[str]
    named_graph_uris: list[str]
    #: An approved query named by its name (``query-name``) or hash (``query-hash``).
    name: str | None = None
    digest: str | None = None


def forget_train(uid: str) -> None:
    """Drop a deregistered train's cached analyses."""
    _cache.forget(uid)


def _admit(uid: str) -> None:
    with _lock:
        if _in_flight.get(uid, 0) >= ANALYSES_PER_TRAIN:
            raise QueryCheckBusy("another query of this train is still being checked")
        if sum(_in_flight.values()) >= ANALYSES_IN_FLIGHT:
            raise QueryCheckBusy("the station is checking many queries; retry shortly")
        _in_flight[uid] = _in_flight.get(uid, 0) + 1


def _release(uid: str) -> None:
    with _lock:
        left = _in_flight.get(uid, 1) - 1
        if left > 0:
            _in_flight[uid] = left
        else:
            _in_flight.pop(uid, None)


async def _analyse(train: RegisteredTrain, selection: Selection) -> Verdict:
    job = job_for(selection, train)
    cached = _cache.get(train.uid, job)
    if cached is not None:
        return cached
    _admit(train.uid)
    try:
        future = asyncio.get_running_loop().run_in_executor(
            _threads, _analyse_then_release, train.uid, job
        )
    except BaseException:
        _release(train.uid)
        raise
    verdict = await future
    _cache.put(train.uid, job, verdict)
    return verdict


def _analyse_then_release(uid: str, job: ParseJob) -> Verdict:
    """Runs in a checker thread; the train's slot frees when the analysis really ends.

    Releasing it when the request ends instead would let a train that abandons requests
    start more analyses than its cap while earlier ones still occupy checkers.
    """
    try:
        return POOL.analyse(job)
    finally:
        _release(uid)


async def _checked(
    train: RegisteredTrain, request: QueryRequest
) -> tuple[CheckedQuery | None, str | None, StationApiError | None]:
    """The checked query, or the refusal; with the query's hash whenever it is known."""
    try:
        selection = select_text(train, request.text, request.name, request.digest)
        verdict = await _analyse(train, selection)
    except StationApiError as refusal:
        return None, None, refusal
    try:
        checked = check_query(
            selection, verdict, train, request.default_graph_uris, request.named_graph_uris
        )
    except StationApiError as refusal:
        return None, verdict.query_hash, refusal
    return checked, checked.query_hash, None


def _actor(train: RegisteredTrain) -> str:
    registration = train.registration
    return f"train:{registration.namespace}/{registration.name}"


async def _audit(
    state: StationState,
    train: RegisteredTrain,
    details: dict[str, DetailValue],
    actor: str | None = None,
) -> None:
    registration = train.registration
    record: dict[str, DetailValue] = {
        "requesterOrganisation": registration.requester_organisation,
        **details,
    }
    await asyncio.to_thread(
        state.chain.record,
        ProvenanceKind.QUERY,
        train_uid=train.uid,
        actor=actor or _actor(train),
        details=record,
    )


async def record_refusal(
    state: StationState,
    train: RegisteredTrain,
    refusal: StationApiError,
    started: float,
    query_hash: str | None = None,
    actor: str | None = None,
) -> None:
    """Count and audit a refused or failed request (the caller raises it afterwards)."""
    elapsed = time.perf_counter() - started
    failed = refusal.status >= 500
    if failed:
        state.metrics.query_failed()
        if refusal.reason == "StoreUnavailable":
            state.metrics.store_up.labels(state.metrics.station).set(0)
    else:
        state.metrics.query_refused()
    await _audit(
        state,
        train,
        {
            "queryHash": query_hash,
            "outcome": "failed" if failed else "refused",
            "reason": refusal.reason,
            "rows": 0,
            "durationMs": round(elapsed * 1000, 3),
            "distinctPatients": 0,
        },
        actor,
    )


async def run_query(
    state: StationState,
    train: RegisteredTrain,
    request: QueryRequest,
    started: float,
    actor: str | None = None,
) -> Answer:
    """Check, execute and audit one query of ``train``; ``actor`` names who asked when it is
    not the train itself (the station computing the train's aggregates)."""
    policy = train.registration.policy.data_access
    try:
        checked, digest, refusal = await _checked(train, request)
    except Exception:  # a checking bug must not become a 500 or escape the audit
        log.exception("checking a query failed unexpectedly")
        checked, digest, refusal = None, None, QueryNotAllowed("the query could not be checked")
    try:
        if refusal is not None:
            raise refusal
        assert checked is not None
        result_format = negotiate(request.accept, checked.form)
        job = QueryJob(
            checked.text,
            checked.form,
            checked.default_graphs,
            checked.named_graphs,
            result_format,
            policy.row_cap,
            float(policy.query_timeout_seconds),
        )
        try:
            outcome = await state.store.query(job, float(policy.query_timeout_seconds))
        except StationApiError:
            raise
        except Exception:
            log.exception("the data store failed unexpectedly")
            raise StoreUnavailable("the data store failed") from None
        if outcome.error is not None:
            reason, message = outcome.error
            raise _worker_error(reason, message)
        minimum = policy.min_distinct_patients
        if minimum is not None and 0 < outcome.distinct_patients < minimum:
            raise TooFewPatients(
                f"the answer binds fewer than the policy's minimum of {minimum} distinct patients"
            )
    except StationApiError as failure:
        await record_refusal(state, train, failure, started, digest, actor)
        raise
    elapsed = time.perf_counter() - started
    state.metrics.query_answered(elapsed, outcome.rows)
    state.registry.record_query(train.uid, outcome.distinct_patients, outcome.patients)
    await _audit(
        state,
        train,
        {
            "queryHash": checked.query_hash,
            "outcome": "answered",
            "reason": "Answered",
            "rows": outcome.rows,
            "durationMs": round(elapsed * 1000, 3),
            "distinctPatients": outcome.distinct_patients,
        },
        actor,
    )
    return Answer(outcome.body, MEDIA_TYPE_OF[result_format], outcome.rows, outcome.patients)


def _worker_error(reason: str, message: str) -> StationApiError:
    kinds: dict[str, type[StationApiError]] = {
        "RowCapExceeded": errors.RowCapExceeded,
        "MalformedQuery": errors.MalformedQuery,
        "StoreUnavailable": errors.StoreUnavailable,
    }
    return kinds.get(reason, errors.StoreUnavailable)(message)
