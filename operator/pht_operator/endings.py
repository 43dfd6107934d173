"""Ending steps of a pass: record the terminal condition, then clean up; cancel; delete.

The outcome is written first; only then is the token revoked, the Secret and NetworkPolicy
removed and the Job's TTL set. Cancelling and deleting revoke the token *before* deleting the
Job (background propagation, so its pods stop).
"""

from __future__ import annotations

from pht_contract import constants, wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_operator import kubeapi
from pht_operator.kubeapi import ApiError
from pht_operator.passes import PassBase, TransientError, utcnow
from pht_operator.statuses import (
    is_terminal,
    now_iso,
    parse_time,
    reason_of,
)


class EndingSteps(PassBase):
    """Ending steps: record the terminal condition, then clean up; cancel; delete."""

    async def succeed(self) -> None:
        self.draft.set_condition(
            ConditionType.SUCCEEDED, "True", Reason.RESULT_RELEASED, "the result was released"
        )
        await self.finish(Summary.SUCCEEDED, Reason.RESULT_RELEASED, "the result was released")

    async def fail(self, reason: Reason, message: str, *, delete_job: bool) -> None:
        if reason_of(self.status, ConditionType.RUNNING) != Reason.RUN_COMPLETED:
            self.draft.set_condition(ConditionType.RUNNING, "False", reason, message)
        self.draft.set_condition(ConditionType.FAILED, "True", reason, message)
        await self.finish(Summary.FAILED, reason, message)
        if delete_job:
            await self.delete_run_objects(job=True)

    async def finish(self, summary: Summary, reason: Reason | str, message: str) -> None:
        """Record the terminal condition, then clean up (token first, TTL last)."""
        self.mark_summary(summary)
        self.draft.set("completionTime", now_iso())
        await self.flush()
        created = parse_time(self.body["metadata"].get("creationTimestamp"))
        if created is not None:
            self.ctx.metrics.turnaround.observe(max(0.0, (utcnow() - created).total_seconds()))
        outcome = "Succeeded" if summary == Summary.SUCCEEDED else summary.value
        self.ctx.metrics.finish(outcome, str(reason))
        self.event("Normal" if summary == Summary.SUCCEEDED else "Warning", str(reason), message)
        self.ctx.store.release_slot(self.namespace, self.uid)
        await self.after_terminal()

    async def after_terminal(self) -> None:
        """Revoke the token, remove the run's Secret and NetworkPolicy, set the Job TTL. Once."""
        store = self.ctx.store
        if self.uid in store.cleaned:
            return
        run = self.status.get("run") or {}
        if run:
            await self.ctx.station.deregister(self.uid)
            await self.provenance(wire.ProvenanceKind.DEREGISTRATION, "terminal")
            await self.delete_run_objects(job=False)
            job = await self.ctx.kube.get_or_none(kubeapi.JOBS, run["namespace"], run["jobName"])
            if job is not None and job["metadata"]["uid"] == run.get("jobUid"):
                ttl = self.ctx.settings.job_ttl_seconds
                if job.get("spec", {}).get("ttlSecondsAfterFinished") != ttl:
                    await self.ctx.kube.patch(
                        kubeapi.JOBS,
                        run["namespace"],
                        run["jobName"],
                        {"spec": {"ttlSecondsAfterFinished": ttl}},
                    )
        store.cleaned.add(self.uid)
        store.release_slot(self.namespace, self.uid)

    async def delete_run_objects(self, *, job: bool) -> None:
        namespace = self.ctx.settings.run_namespace
        kube = self.ctx.kube
        if job:
            await kube.delete(kubeapi.JOBS, namespace, self.names.job, "Background")
        # The Secret last: once it is gone, so is everything else of the run.
        await kube.delete(kubeapi.NETWORK_POLICIES, namespace, self.names.network_policy)
        await kube.delete(kubeapi.SECRETS, namespace, self.names.secret)

    async def unrecorded_job_exists(self) -> bool:
        """Whether this Train's Job exists although status records none: the watch cache, and
        once per process a GET by its deterministic name (a cold cache is not taken for
        absence; afterwards the Job watch sees any Job of the Train)."""
        store = self.ctx.store
        if self.uid in store.jobs:
            return True
        if self.uid in store.suspend_checked:
            return False
        store.suspend_checked.add(self.uid)
        job = await self.ctx.kube.get_or_none(
            kubeapi.JOBS, self.ctx.settings.run_namespace, self.names.job
        )
        if job is None:
            return False
        owner = (job["metadata"].get("labels") or {}).get(constants.LABEL_TRAIN_UID)
        return owner == self.uid

    async def cancel(self, reason: Reason, message: str) -> None:
        """Stop a run: revoke the token first, then delete the Job so its pods stop."""
        await self.ctx.station.deregister(self.uid)
        await self.provenance(wire.ProvenanceKind.DEREGISTRATION, "cancelled", reason=reason)
        await self.delete_run_objects(job=True)
        self.draft.set_condition(ConditionType.RUNNING, "False", reason, message)
        self.draft.set_condition(ConditionType.FAILED, "True", reason, message)
        await self.finish(Summary.FAILED, reason, message)

    async def on_deletion(self) -> None:
        finalizers = list(self.body["metadata"].get("finalizers") or [])
        if constants.FINALIZER not in finalizers:
            return
        # Always, even when status records no run: a pass may have created the run objects
        # and died before writing the Job's uid. Names are deterministic and every step
        # tolerates "already gone". Token first (deregistration is idempotent), then the Job
        # with background propagation so its pods stop, then the Secret and NetworkPolicy.
        recorded = bool(self.status.get("run"))
        if self.uid not in self.ctx.store.cleaned:
            await self.ctx.station.deregister(self.uid)
            if recorded:
                await self.provenance(wire.ProvenanceKind.DEREGISTRATION, "deleted")
        await self.delete_run_objects(job=True)
        if recorded and not is_terminal(self.status):
            self.event("Normal", Reason.CANCELLED, "the Train was deleted; its run was stopped")
        remaining = [f for f in finalizers if f != constants.FINALIZER]
        patch = {
            "metadata": {
                "finalizers": remaining or None,
                "resourceVersion": self.body["metadata"]["resourceVersion"],
            }
        }
        try:
            await self.ctx.kube.patch(kubeapi.TRAINS, self.namespace, self.name, patch)
        except ApiError as exc:
            if not exc.not_found:
                raise TransientError(f"finalizer removal refused: {exc.code}") from exc
        self.ctx.store.release_slot(self.namespace, self.uid)
