"""Run one train's query end to end: check, execute, guard, audit, count.

Every query — answered, refused or failed — becomes one provenance record with the train, the
requester's organisation, the query hash (when it parses), the outcome and reason, rows,
duration and distinct patients. Never the answer itself and never the query text: the hash
identifies it against the approved queries.
"""

import asyncio
import time
from dataclasses import dataclass

from pht_contract.wire import DetailValue, ProvenanceKind
from pht_station_api import errors
from pht_station_api.errors import StationApiError, TooFewPatients
from pht_station_api.gateway.checks import check_query, query_hash_of
from pht_station_api.gateway.formats import MEDIA_TYPE_OF, negotiate
from pht_station_api.registry import RegisteredTrain
from pht_station_api.state import StationState
from pht_station_api.stores.jobs import QueryJob


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str
    rows: int


@dataclass(frozen=True)
class QueryRequest:
    text: str
    accept: str | None
    default_graph_uris: list[str]
    named_graph_uris: list[str]


def _actor(train: RegisteredTrain) -> str:
    registration = train.registration
    return f"train:{registration.namespace}/{registration.name}"


async def _audit(
    state: StationState,
    train: RegisteredTrain,
    details: dict[str, DetailValue],
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
        actor=_actor(train),
        details=record,
    )


async def run_query(state: StationState, train: RegisteredTrain, request: QueryRequest) -> Answer:
    started = time.perf_counter()
    policy = train.registration.policy.data_access
    try:
        checked = check_query(
            request.text,
            train,
            request.default_graph_uris,
            request.named_graph_uris,
            remote=not state.store.embedded,
        )
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
        outcome = await state.store.query(job, float(policy.query_timeout_seconds))
        if outcome.error is not None:
            reason, message = outcome.error
            raise _worker_error(reason, message)
        minimum = policy.min_distinct_patients
        if minimum is not None and 0 < outcome.distinct_patients < minimum:
            raise TooFewPatients(
                f"the answer binds fewer than the policy's minimum of {minimum} distinct patients"
            )
    except StationApiError as refusal:
        elapsed = time.perf_counter() - started
        failed = refusal.status >= 500
        if failed:
            state.metrics.query_failed(refusal.reason)
            if refusal.reason == "StoreUnavailable":
                state.metrics.store_up.labels(state.metrics.station).set(0)
        else:
            state.metrics.query_refused(refusal.reason)
        await _audit(
            state,
            train,
            {
                "queryHash": query_hash_of(request.text, train)
                if len(request.text.encode()) <= policy.max_query_bytes
                else None,
                "outcome": "failed" if failed else "refused",
                "reason": refusal.reason,
                "rows": 0,
                "durationMs": round(elapsed * 1000, 3),
                "distinctPatients": 0,
            },
        )
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
    )
    return Answer(outcome.body, MEDIA_TYPE_OF[result_format], outcome.rows)


def _worker_error(reason: str, message: str) -> StationApiError:
    kinds: dict[str, type[StationApiError]] = {
        "RowCapExceeded": errors.RowCapExceeded,
        "MalformedQuery": errors.MalformedQuery,
        "StoreUnavailable": errors.StoreUnavailable,
    }
    return kinds.get(reason, errors.StoreUnavailable)(message)
