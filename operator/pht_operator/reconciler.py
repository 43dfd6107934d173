"""The lifecycle of one Train, one level-triggered pass at a time.

Each pass reads the Train (from the watch cache) and the world it depends on (policy,
approvals, the Job, the station API), decides the next step from *state*, never from the event
that woke it, performs it idempotently and records it in the Train status. Passes repeat until
the Train is terminal; killing the operator between any two lines of this module loses nothing:

* run objects have deterministic names, so a repeated create answers 409 and is adopted;
* the token lives only in the run's Secret, so a repeated registration uses the same token;
* the Job's uid is written to status right after the Job exists and before anything depends on
  it; a recorded Job that is gone ends ``Failed/RunLost`` — a second run is never started;
* status writes carry the resourceVersion that was read, so a stale view is refused (409) and
  the pass simply runs again on fresh data;
* the Job TTL is applied only after the outcome is recorded; deletion revokes the token before
  deleting the Job (background propagation, so its pods stop).

Steps: admit → approve → (suspend?) → start the run → follow it → mirror the release → finish.
See docs/lifecycle.md for the state table.
"""

from __future__ import annotations

from typing import Any

from pht_contract.conditions import ConditionType, Reason, Summary
from pht_operator.admitting import AdmissionSteps
from pht_operator.endings import EndingSteps
from pht_operator.kubeapi import ApiError
from pht_operator.passes import Context, EventSink, TransientError
from pht_operator.running import RunSteps
from pht_operator.stationapi import StationApiError
from pht_operator.statuses import (
    is_terminal,
    is_true,
    reason_of,
)

__all__ = ["Context", "EventSink", "TrainPass", "TransientError", "reconcile"]

Obj = dict[str, Any]


class TrainPass(AdmissionSteps, RunSteps, EndingSteps):
    """One reconcile pass over one Train: the order of the steps."""

    async def run(self) -> None:
        meta = self.body["metadata"]
        if meta.get("deletionTimestamp"):
            await self.on_deletion()
            return
        if is_terminal(self.status):
            await self.after_terminal()
            return
        await self.ensure_finalizer()
        if not await self.parse_spec():
            await self.flush()
            return
        if not is_true(self.status, ConditionType.ADMITTED) and not await self.admit():
            await self.flush()
            return
        if not is_true(self.status, ConditionType.APPROVED) and not await self.approve():
            await self.flush()
            return
        run = self.status.get("run") or {}
        if not run.get("jobUid"):
            if self.spec is not None and self.spec.suspend:
                if await self.unrecorded_job_exists():
                    # Created by a pass that died before recording it: stop it like a run.
                    await self.cancel(
                        Reason.CANCELLED,
                        "suspended while its run was being created: the run was stopped and "
                        "its token revoked",
                    )
                    return
                self.draft.set_condition(
                    ConditionType.RUNNING,
                    "False",
                    Reason.SUSPENDED,
                    "suspended by the requester before the run started; set spec.suspend to "
                    "false to start it",
                )
                if self.status.get("summary") != Summary.SUSPENDED:
                    self.event("Normal", "Suspended", "the Train is suspended; no run is started")
                self.mark_summary(Summary.SUSPENDED)
                self.ctx.store.release_slot(self.namespace, self.uid)
                await self.flush()
                return
            if self.status.get("summary") == Summary.SUSPENDED and not (
                await self.resume_within_capacity()
            ):
                await self.flush()
                return
            await self.start_run()
            return
        if self.spec is not None and self.spec.suspend:
            await self.cancel(
                Reason.CANCELLED,
                "suspended while running: the run was stopped and its token revoked",
            )
            return
        if reason_of(self.status, ConditionType.RUNNING) == Reason.RUN_COMPLETED:
            await self.mirror_release()
        else:
            await self.follow()
        await self.flush()


async def reconcile(ctx: Context, uid: str) -> None:
    """One pass over the Train with this uid (a no-op if it is gone or not ours)."""
    body = ctx.store.trains.get(uid)
    if body is None or body["metadata"].get("namespace") not in ctx.settings.station_namespaces:
        return
    try:
        await TrainPass(ctx, body).run()
    except ApiError as exc:
        raise TransientError(f"Kubernetes API: {exc.code} {exc.reason}") from exc
    except StationApiError as exc:
        raise TransientError(f"station API: {exc}") from exc
