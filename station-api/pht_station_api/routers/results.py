"""Results on the internal listener: a running train uploads, the operator completes and polls.

``PUT`` :data:`~pht_contract.wire.RESULT_PATH` stores one attempt (201 with its receipt);
``PUT`` :data:`~pht_contract.wire.TRAIN_COMPLETION_PATH` makes the gate decide on the final
attempt (idempotent); ``GET`` :data:`~pht_contract.wire.TRAIN_STATE_PATH` is what the operator
mirrors into the Train status — a result summary only after release.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from pht_contract.aggregates import AggregateResult
from pht_contract.wire import (
    RESULT_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_STATE_PATH,
    RunCompletion,
    TrainState,
    UploadReceipt,
)
from pht_station_api.aggregates.runs import compute_for_run
from pht_station_api.bodylimits import allow_body
from pht_station_api.deps import OperatorDep, RunDep, StateDep
from pht_station_api.errors import NotFound
from pht_station_api.provenance.operatorsteps import record_run
from pht_station_api.registry import RegisteredTrain
from pht_station_api.responses import refusal
from pht_station_api.results.archive import ResultArchive
from pht_station_api.results.errors import ResultTooLarge
from pht_station_api.results.metrics import result_metrics
from pht_station_api.results.records import TrainContext
from pht_station_api.state import StationState

router = APIRouter(tags=["results"])

_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": UploadReceipt, "description": "Stored as the next attempt"},
    401: refusal("Unauthenticated"),
    409: refusal("ResultClosed: the run's completion was already reported"),
    413: refusal("ResultTooLarge"),
    422: refusal("InvalidResult: not a valid result manifest"),
}


def result_archive(state: StationState) -> ResultArchive:
    archive = state.results
    assert isinstance(archive, ResultArchive), "the station was built without a result archive"
    return archive


def train_context(train: RegisteredTrain) -> TrainContext:
    registration = train.registration
    return TrainContext(
        uid=registration.uid,
        namespace=registration.namespace,
        name=registration.name,
        requester=registration.requested_by or registration.requester_name,
        organisation=registration.requester_organisation,
        disclosure=registration.policy.disclosure,
        retention_days=registration.policy.result_retention_days,
        patients=frozenset(train.patient_set),
        # The ledger's requester scope: only the admission-recorded identity, since a name
        # typed into the spec could be varied (a fresh scope) or borrowed (someone else's).
        requested_by=registration.requested_by,
        # A reviewed digest speaks for the image's own code only: a run that overrides its
        # command or args, or mounts an input artifact, runs something nobody reviewed.
        image=registration.image if registration.image_runs_as_built else None,
        # Kept either way: without the image it cannot count, and the gate says why not.
        signed_review=registration.signed_review,
    )


def audited_cohort(train: RegisteredTrain) -> int | None:
    """``None`` when no audited query bound patients: the gate then holds, never trusts."""
    return train.max_distinct_patients or None


def _result_too_large(limit: int) -> ResultTooLarge:
    return ResultTooLarge(f"the result exceeds the policy's {limit} bytes")


@router.put(
    RESULT_PATH,
    status_code=201,
    response_model=UploadReceipt,
    responses=_UPLOAD_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def upload_result(request: Request, state: StateDep, train: RunDep) -> JSONResponse:
    """Store the running train's result manifest as its next attempt (decided later)."""
    archive = result_archive(state)
    max_bytes = train.registration.policy.disclosure.max_result_bytes
    allow_body(request, max_bytes, _result_too_large)
    raw = await request.body()
    receipt = await run_in_threadpool(archive.upload, train_context(train), raw, state.chain)
    result_metrics(state.metrics).uploaded()
    return JSONResponse(receipt.wire(), status_code=201)


def _known(state: StationState, uid: str) -> RegisteredTrain:
    train = state.registry.get(uid)
    if train is None:
        raise NotFound(f"train {uid} was never registered")
    return train


@router.put(
    TRAIN_COMPLETION_PATH,
    response_model=TrainState,
    responses={
        401: refusal("Unauthenticated"),
        404: refusal("NotFound"),
    },
)
async def complete_run(
    uid: str, completion: RunCompletion, state: StateDep, _: OperatorDep
) -> dict[str, Any]:
    """The run's Job finished: the station computes the Train's declared aggregates, and the
    gate decides on them and the final attempt (once)."""
    train = _known(state, uid)
    await run_in_threadpool(record_run, state.chain, train.registration, completion)
    archive = result_archive(state)
    aggregates: list[AggregateResult] = []
    if completion.job_succeeded and not archive.completed(uid):
        aggregates = await compute_for_run(state, train)
    done = await run_in_threadpool(
        archive.complete,
        train_context(train),
        completion,
        audited_cohort(train),
        state.chain,
        aggregates,
    )
    metrics = result_metrics(state.metrics)
    if done.decided_now:
        metrics.decided(done.record.release.value, done.record.rule)
        # Decided once: the ledger holds the fingerprints it needs from here on.
        state.registry.forget_patients(uid)
    metrics.set_held(len(archive.held()))
    await run_in_threadpool(archive.purge_if_due)
    return archive.train_state(uid, train.active(), train.progress).wire()


@router.get(
    TRAIN_STATE_PATH,
    response_model=TrainState,
    responses={
        401: refusal("Unauthenticated"),
        404: refusal("NotFound"),
    },
)
def train_state(uid: str, state: StateDep, _: OperatorDep) -> dict[str, Any]:
    """Progress, uploads and the release state with its rule, for the operator to mirror."""
    train = _known(state, uid)
    archive = result_archive(state)
    result_metrics(state.metrics).set_held(len(archive.held()))
    return archive.train_state(uid, train.active(), train.progress).wire()
