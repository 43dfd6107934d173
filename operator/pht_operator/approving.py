"""Approval: re-judge the current spec against the current policy, then count approvals.

An edited or now-refused Train ends (no approval counts for it); otherwise the TrainApprovals
bound to the admitted spec hash are counted (:mod:`pht_operator.approvals` decides) and a
standing approval's run is consumed once.
"""

from __future__ import annotations

import time

from pht_contract import wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.evaluation import required_approvers
from pht_contract.hashing import spec_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.times import parse_utc, utc_now
from pht_operator import approvals as approval_rules
from pht_operator.decisions import decide
from pht_operator.endings import fail, finish
from pht_operator.kube import APPROVALS, ApiError
from pht_operator.passes import (
    Next,
    TrainPass,
    TransientError,
    carry_provenance,
    ensure_policy,
    event,
    provenance,
)
from pht_operator.statuses import condition, is_true, reason_of


async def refuse_current_spec(train: TrainPass) -> bool:
    """Re-judge the spec as it is now against the policy as it is now; True (and the Train
    ends) if it was edited since admission or the policy refuses it. An approval of a
    refused spec is never recorded, whatever hash a steward approved."""
    assert train.spec is not None
    policy = await ensure_policy(train)
    admitted = train.status.get("specHash")
    current = spec_hash(train.spec)
    if admitted and admitted != current:
        await fail(
            train,
            Reason.SPEC_CHANGED_AFTER_ADMISSION,
            f"the spec changed after admission (admitted spec hash {admitted}, current spec "
            f"hash {current}); nothing was approved or run: submit a new Train instead",
            delete_job=False,
        )
        return True
    decision = decide(train.spec, policy)
    train.decision = decision
    if decision.admitted:
        return False
    await provenance(
        train, wire.ProvenanceKind.APPROVAL, "decision", outcome="Rejected", reason=decision.reason
    )
    message = f"the station policy refuses the Train as it is now: {decision.message}"
    train.draft.set_condition(ConditionType.APPROVED, "False", decision.reason, message)
    await finish(train, Summary.REJECTED, decision.reason, message)
    train.ctx.metrics.admission("Rejected", str(decision.reason))
    return True


async def approve(train: TrainPass) -> Next:
    """``Approved=True`` once enough approvals (or none needed); else wait or end."""
    if is_true(train.status, ConditionType.APPROVED):
        return Next.CONTINUE
    assert train.spec is not None
    if await refuse_current_spec(train):
        return Next.DONE
    ctx = train.ctx
    policy = await ensure_policy(train)
    assert train.decision is not None
    required = required_approvers(policy)
    if required == 0:
        train.draft.set_condition(
            ConditionType.APPROVED,
            "True",
            Reason.APPROVAL_NOT_REQUIRED,
            "the station policy requires no approval",
        )
        return Next.CONTINUE
    current_hash = spec_hash(train.spec)
    meta = train.body["metadata"]
    annotations = meta.get("annotations") or {}
    verdict = approval_rules.decide(
        train_name=train.name,
        train_uid=train.uid,
        spec=train.spec,
        spec_hash=current_hash,
        query_hashes=train.decision.approved_query_hashes,
        required=required,
        requester=approval_rules.requester_identities(train.spec, annotations),
        requester_known=approval_rules.requested_by(annotations) is not None,
        creator=approval_rules.requested_by(annotations),
        train_created=parse_utc(meta.get("creationTimestamp")),
        approvals=list(ctx.view.approvals.get(train.namespace, {}).values()),
        standing_limits=policy.approval.standing,
    )
    if verdict.rejected:
        await provenance(train, wire.ProvenanceKind.APPROVAL, "decision", outcome="Rejected")
        train.draft.set_condition(ConditionType.APPROVED, "False", Reason.REJECTED, verdict.message)
        await finish(train, Summary.REJECTED, Reason.REJECTED, verdict.message)
        ctx.metrics.admission("Rejected", Reason.REJECTED)
        return Next.DONE
    if not verdict.approved:
        if (
            train.draft.set_condition(
                ConditionType.APPROVED, "False", verdict.reason, verdict.message
            )
            and reason_of(train.draft.original, ConditionType.APPROVED) != verdict.reason
        ):
            event(train, "Normal", verdict.reason, verdict.message, action="Approve")
            train.ctx.notify.approval_waits(train.body)
        train.draft.set_summary(Summary.AWAITING_APPROVAL)
        return Next.DONE
    if verdict.standing is not None:
        await consume_standing(train, verdict.standing, policy)
    carry_provenance(
        train,
        wire.ProvenanceKind.APPROVAL,
        "decision",
        outcome=str(verdict.reason),
        approvers=", ".join(verdict.approvers) or None,
        standing=verdict.standing,
        specHash=current_hash,
    )
    train.draft.set_condition(ConditionType.APPROVED, "True", verdict.reason, verdict.message)
    if verdict.approvers:
        train.draft.set("approvedBy", list(verdict.approvers))
    admitted = condition(train.status, ConditionType.ADMITTED)
    since = parse_utc(admitted.get("lastTransitionTime")) if admitted else None
    if since is not None:
        ctx.metrics.approval_wait.observe(max(0.0, (utc_now() - since).total_seconds()))
    marks = ctx.view.marks.get(train.uid)
    if marks is not None:
        marks.approved = time.monotonic()
    event(train, "Normal", str(verdict.reason), verdict.message, action="Approve")
    return Next.CONTINUE


async def consume_standing(train: TrainPass, name: str, policy: StationPolicySpec) -> None:
    """Count this run against a standing approval, once (idempotent by Train uid)."""
    ctx = train.ctx
    approval = await ctx.kube.get(APPROVALS, train.namespace, name)
    status = approval.get("status") or {}
    consumed = list(status.get("consumedBy") or [])
    if train.uid in consumed:
        return
    # Re-checked against the fresh object: concurrent Trains may have used it up since
    # the (cached) verdict, and the policy's caps apply here as in the verdict.
    standing = approval["spec"]["standing"]
    max_runs, expires = approval_rules.standing_caps(
        int(standing["maxRuns"]),
        standing.get("expiresAt"),
        approval["metadata"].get("creationTimestamp"),
        policy.approval.standing,
    )
    used = int(status.get("runsUsed", 0))
    ctx.view.approvals[train.namespace][name] = approval  # the retry decides afresh
    if used >= max_runs:
        raise TransientError(f"standing approval {name} has no runs left")
    if expires is not None and expires <= utc_now():
        raise TransientError(f"standing approval {name} expired")
    patch = {
        "metadata": {"resourceVersion": approval["metadata"]["resourceVersion"]},
        "status": {"runsUsed": used + 1, "consumedBy": [*consumed, train.uid][-1000:]},
    }
    try:
        updated = await ctx.kube.merge_patch(APPROVALS, train.namespace, name, patch, status=True)
    except ApiError as exc:
        raise TransientError(f"standing approval {name} changed meanwhile") from exc
    ctx.view.approvals[train.namespace][name] = updated
