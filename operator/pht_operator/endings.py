"""Endings of a Train: record the terminal condition, then clean up; cancel a run.

The outcome is written first; only then is the token revoked, the Secret and NetworkPolicy
removed and the Job's TTL set. Cancelling revokes the token *before* deleting the Job
(background propagation, so its pods stop). The steps of every stage call these directly.
"""

from __future__ import annotations

from typing import Any

from pht_contract import wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.times import parse_utc, researcher_iso, utc_now
from pht_operator.kube import JOBS, NETWORK_POLICIES, SECRETS, ApiError
from pht_operator.passes import TrainPass, event, flush, provenance
from pht_operator.statuses import reason_of


async def succeed(train: TrainPass) -> None:
    """The result was released: ``Succeeded=True``."""
    message = "the result was released"
    await finish(train, Summary.SUCCEEDED, Reason.RESULT_RELEASED, message)


async def fail(train: TrainPass, reason: Reason, message: str, *, delete_job: bool) -> None:
    """The Train failed: ``Failed=True`` (and ``Running=False`` unless the run completed)."""
    if reason_of(train.status, ConditionType.RUNNING) != Reason.RUN_COMPLETED:
        train.draft.set_condition(ConditionType.RUNNING, "False", reason, message)
    train.draft.set_condition(ConditionType.FAILED, "True", reason, message)
    await finish(train, Summary.FAILED, reason, message)
    if delete_job:
        await delete_run_objects(train, job=True)


def known_job_uid(train: TrainPass) -> str | None:
    """The run's Job: as status records it, or as the watch cache holds it."""
    recorded = train.run.get("jobUid")
    if recorded:
        return str(recorded)
    cached = train.ctx.view.jobs.get(train.uid)
    return None if cached is None else cached["metadata"].get("uid")


async def record_run_end(train: TrainPass, reason: Reason | str, job_uid: str | None) -> None:
    """The run's record when it ends without a completion call (lost, cancelled, deleted);
    the same event id as the record the station writes at completion, so a run has one."""
    await provenance(
        train, wire.ProvenanceKind.RUN, "ended", jobUid=job_uid, jobSucceeded=False, reason=reason
    )


async def cancel(train: TrainPass, reason: Reason, message: str) -> None:
    """Stop a run: revoke the token first, then delete the Job so its pods stop."""
    await train.ctx.station.deregister(train.uid)
    await provenance(train, wire.ProvenanceKind.DEREGISTRATION, "cancelled", reason=reason)
    await record_run_end(train, reason, known_job_uid(train))
    await delete_run_objects(train, job=True)
    train.draft.set_condition(ConditionType.RUNNING, "False", reason, message)
    train.draft.set_condition(ConditionType.FAILED, "True", reason, message)
    await finish(train, Summary.FAILED, reason, message)


async def finish(train: TrainPass, summary: Summary, reason: Reason | str, message: str) -> None:
    """Record the terminal condition, then clean up (token first, TTL last)."""
    train.draft.set_outcome(summary, str(reason), message)
    train.draft.set("completionTime", researcher_iso())
    await flush(train)
    ctx = train.ctx
    created = parse_utc(train.body["metadata"].get("creationTimestamp"))
    if created is not None:
        ctx.metrics.turnaround.observe(max(0.0, (utc_now() - created).total_seconds()))
    outcome = "Succeeded" if summary == Summary.SUCCEEDED else summary.value
    ctx.metrics.finish(outcome, str(reason))
    event(
        train,
        "Normal" if summary == Summary.SUCCEEDED else "Warning",
        str(reason),
        message,
        action="Finish",
    )
    ctx.view.release_slot(train.namespace, train.uid)
    await clean_up(train)


async def clean_up(train: TrainPass) -> None:
    """Revoke the token, remove the run's Secret and NetworkPolicy, set the Job TTL. Once."""
    ctx = train.ctx
    if train.uid in ctx.view.cleaned:
        return
    run = train.run
    if run:
        # The station API records the revocation itself (a Deregistration record).
        await ctx.station.deregister(train.uid)
        await delete_run_objects(train, job=False)
        await _set_job_ttl(train, run)
    ctx.view.cleaned.add(train.uid)
    ctx.view.progress_read.pop(train.uid, None)
    ctx.view.release_slot(train.namespace, train.uid)


async def _set_job_ttl(train: TrainPass, run: dict[str, Any]) -> None:
    """Let the run's Job expire after the configured TTL. The Job comes from the watch cache
    (asked for only if the cache does not hold the recorded one); a Job of the same name that
    is not the recorded one is left alone."""
    ctx = train.ctx
    job = ctx.view.jobs.get(train.uid)
    if job is None or job["metadata"].get("uid") != run.get("jobUid"):
        job = await ctx.kube.get_or_none(JOBS, run["namespace"], run["jobName"])
    if job is None or job["metadata"].get("uid") != run.get("jobUid"):
        return
    ttl = ctx.settings.job_ttl_seconds
    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") == ttl:
        return
    patch = {"spec": {"ttlSecondsAfterFinished": ttl}}
    try:
        await ctx.kube.merge_patch(JOBS, run["namespace"], run["jobName"], patch)
    except ApiError as exc:
        if not exc.not_found:  # gone meanwhile (its TTL or a person): nothing to expire
            raise


async def delete_run_objects(train: TrainPass, *, job: bool) -> None:
    """Delete the run's objects by their deterministic names (gone already is fine)."""
    namespace = train.ctx.settings.run_namespace
    kube = train.ctx.kube
    if job:
        await kube.delete(JOBS, namespace, train.names.job)
    # The Secret last: once it is gone, so is everything else of the run.
    await kube.delete(NETWORK_POLICIES, namespace, train.names.network_policy)
    await kube.delete(SECRETS, namespace, train.names.secret)
