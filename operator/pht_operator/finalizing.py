"""The Train's finalizer: added on the first pass, removed once a deleted Train's run is gone."""

from __future__ import annotations

from pht_contract import constants, wire
from pht_contract.conditions import Reason
from pht_operator.endings import delete_run_objects, known_job_uid, record_run_end
from pht_operator.kube import TRAINS, ApiError
from pht_operator.passes import (
    Next,
    TrainPass,
    TransientError,
    event,
    provenance,
    refresh_on_conflict,
)
from pht_operator.statuses import is_terminal


async def ensure_finalizer(train: TrainPass) -> Next:
    """Add the operator's finalizer, so a deleted Train's run is stopped before it goes."""
    meta = train.body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if constants.FINALIZER in finalizers:
        return Next.CONTINUE
    patch = {
        "metadata": {
            "finalizers": [*finalizers, constants.FINALIZER],
            "resourceVersion": meta["resourceVersion"],
        }
    }
    try:
        updated = await train.ctx.kube.merge_patch(TRAINS, train.namespace, train.name, patch)
    except ApiError as exc:
        await refresh_on_conflict(train, exc)
        raise TransientError(f"finalizer write refused: {exc.code}") from exc
    train.adopt(updated)
    return Next.CONTINUE


async def release_deleted(train: TrainPass) -> Next:
    """A deleted Train: stop its run, revoke its token, then let it go."""
    meta = train.body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if constants.FINALIZER not in finalizers:
        return Next.DONE
    # Always, even when status records no run: a pass may have created the run objects
    # and died before writing the Job's uid. Names are deterministic and every step
    # tolerates "already gone". Token first (deregistration is idempotent), then the Job
    # with background propagation so its pods stop, then the Secret and NetworkPolicy.
    recorded = bool(train.run)
    if train.uid not in train.ctx.view.cleaned:
        await train.ctx.station.deregister(train.uid)
        if recorded:
            await provenance(train, wire.ProvenanceKind.DEREGISTRATION, "deleted")
    job_uid = known_job_uid(train)
    if job_uid is not None and not is_terminal(train.status):
        # The run ends here, without a completion call that would have recorded it.
        await record_run_end(train, Reason.CANCELLED, job_uid)
    await delete_run_objects(train, job=True)
    if recorded and not is_terminal(train.status):
        event(
            train,
            "Normal",
            Reason.CANCELLED,
            "the Train was deleted; its run was stopped",
            action="Delete",
        )
    remaining = [f for f in finalizers if f != constants.FINALIZER]
    patch = {
        "metadata": {"finalizers": remaining or None, "resourceVersion": meta["resourceVersion"]}
    }
    try:
        await train.ctx.kube.merge_patch(TRAINS, train.namespace, train.name, patch)
    except ApiError as exc:
        if not exc.not_found:
            raise TransientError(f"finalizer removal refused: {exc.code}") from exc
    train.ctx.view.release_slot(train.namespace, train.uid)
    return Next.DONE
