"""Admission and approval steps of a pass.

Admission evaluates the Train against its namespace's StationPolicy (pure evaluation from the
contract package) and decides capacity; approval first re-judges the current spec against the
current policy (an edited or now-refused Train ends, no approval counts), then counts
TrainApprovals bound to the admitted spec hash (:mod:`pht_operator.approvals` decides) and
consumes a standing approval's run once.
"""

from __future__ import annotations

import time

from pydantic import ValidationError

from pht_contract import constants, wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.evaluation import evaluate, has_capacity, required_approvers
from pht_contract.hashing import spec_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_operator import approvals as approval_rules
from pht_operator import kubeapi
from pht_operator.kubeapi import ApiError
from pht_operator.passes import PassBase, TransientError, utcnow
from pht_operator.statuses import (
    condition,
    parse_time,
    reason_of,
)


class AdmissionSteps(PassBase):
    """Admission and approval steps of a pass."""

    async def parse_spec(self) -> bool:
        try:
            self.spec = TrainSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = tuple(first.get("loc", ()))
            where = ".".join(str(p) for p in loc)
            # InvalidParameters only when it is about spec.parameters; anything else that the
            # CRD schema let through (or a cluster without it) is an invalid spec.
            about_parameters = loc[:1] == ("parameters",)
            reason = Reason.INVALID_PARAMETERS if about_parameters else Reason.INVALID_SPEC
            await self.reject(reason, f"spec.{where}: {first.get('msg')}")
            return False
        return True

    async def reject(self, reason: Reason | str, message: str) -> None:
        self.draft.set_condition(ConditionType.ADMITTED, "False", reason, message)
        await self.finish(Summary.REJECTED, reason, message)
        self.ctx.metrics.admission("Rejected", str(reason))

    async def admit(self) -> bool:
        assert self.spec is not None
        policy = await self.load_policy()
        if policy is None:
            await self.reject(
                Reason.NO_STATION_POLICY,
                f"namespace {self.namespace} has no valid StationPolicy named "
                f"{constants.STATION_POLICY_NAME!r}; this station does not run Trains here",
            )
            return False
        self.policy = policy
        decision = evaluate(self.spec, policy)
        self.decision = decision
        if not decision.admitted:
            await self.provenance(
                wire.ProvenanceKind.ADMISSION,
                "decision",
                outcome="Rejected",
                reason=decision.reason,
            )
            await self.reject(decision.reason, decision.message)
            return False
        store = self.ctx.store
        active = store.active_count(self.namespace, excluding=self.uid)
        if not has_capacity(active + store.waiting_before(self.body), policy):
            # Stable text (no live count): a waiting Train's status is not rewritten per pass.
            message = (
                f"the station runs at most {policy.limits.max_concurrent_trains} Trains of this "
                "namespace at a time (spec.limits.maxConcurrentTrains); admitted when a slot frees"
            )
            if (
                self.draft.set_condition(
                    ConditionType.ADMITTED, "False", Reason.CONCURRENCY_LIMIT_REACHED, message
                )
                and reason_of(self.draft.original, ConditionType.ADMITTED) is None
            ):
                self.ctx.metrics.admission("Waiting", Reason.CONCURRENCY_LIMIT_REACHED)
                self.event("Normal", Reason.CONCURRENCY_LIMIT_REACHED, message)
            self.mark_summary(Summary.WAITING)
            return False
        store.reserved[self.namespace].add(self.uid)
        await self.provenance(wire.ProvenanceKind.ADMISSION, "decision", outcome="Admitted")
        self.draft.set_condition(ConditionType.ADMITTED, "True", Reason.ADMITTED, decision.message)
        if not self.status.get("specHash"):
            # Kept when re-admitted after waiting: it is the hash already approved.
            self.draft.set("specHash", spec_hash(self.spec))
        self.mark_summary(Summary.PENDING)
        marks = store.marks.get(self.uid)
        if marks is not None:
            marks.admitted = time.monotonic()
            self.ctx.metrics.admission_latency.observe(marks.admitted - marks.first_seen)
        self.ctx.metrics.admission("Admitted", Reason.ADMITTED)
        self.event("Normal", Reason.ADMITTED, "admitted by the station policy")
        return True

    async def resume_within_capacity(self) -> bool:
        """A Train leaving ``Suspended`` gave its slot back: take one again, or wait for one
        (``Admitted=False/ConcurrencyLimitReached``, re-admitted first come, first served)."""
        policy = await self.ensure_policy()
        store = self.ctx.store
        active = store.active_count(self.namespace, excluding=self.uid)
        if has_capacity(active + store.waiting_before(self.body), policy):
            store.reserved[self.namespace].add(self.uid)
            return True
        message = (
            f"resumed, but the station runs at most {policy.limits.max_concurrent_trains} Trains "
            "of this namespace at a time (spec.limits.maxConcurrentTrains); the run starts when "
            "a slot frees"
        )
        self.draft.set_condition(
            ConditionType.ADMITTED, "False", Reason.CONCURRENCY_LIMIT_REACHED, message
        )
        self.ctx.metrics.admission("Waiting", Reason.CONCURRENCY_LIMIT_REACHED)
        self.event("Normal", Reason.CONCURRENCY_LIMIT_REACHED, message)
        self.mark_summary(Summary.WAITING)
        return False

    async def refuse_current_spec(self) -> bool:
        """Re-judge the spec as it is now against the policy as it is now; False (and the
        Train ends) if it was edited since admission or the policy refuses it. An approval
        of a refused spec is never recorded, whatever hash a steward approved."""
        assert self.spec is not None
        policy = await self.ensure_policy()
        admitted = self.status.get("specHash")
        current = spec_hash(self.spec)
        if admitted and admitted != current:
            await self.fail(
                Reason.SPEC_CHANGED_AFTER_ADMISSION,
                f"the spec changed after admission (admitted spec hash {admitted}, current spec "
                f"hash {current}); nothing was approved or run: submit a new Train instead",
                delete_job=False,
            )
            return True
        decision = evaluate(self.spec, policy)
        self.decision = decision
        if decision.admitted:
            return False
        await self.provenance(
            wire.ProvenanceKind.APPROVAL, "decision", outcome="Rejected", reason=decision.reason
        )
        message = f"the station policy refuses the Train as it is now: {decision.message}"
        self.draft.set_condition(ConditionType.APPROVED, "False", decision.reason, message)
        await self.finish(Summary.REJECTED, decision.reason, message)
        self.ctx.metrics.admission("Rejected", str(decision.reason))
        return True

    async def approve(self) -> bool:
        assert self.spec is not None
        if await self.refuse_current_spec():
            return False
        policy = await self.ensure_policy()
        assert self.decision is not None
        required = required_approvers(policy)
        if required == 0:
            self.draft.set_condition(
                ConditionType.APPROVED,
                "True",
                Reason.APPROVAL_NOT_REQUIRED,
                "the station policy requires no approval",
            )
            return True
        current_hash = spec_hash(self.spec)
        annotations = self.body["metadata"].get("annotations") or {}
        verdict = approval_rules.decide(
            train_name=self.name,
            train_uid=self.uid,
            spec=self.spec,
            spec_hash=current_hash,
            query_hashes=self.decision.approved_query_hashes,
            required=required,
            requester=approval_rules.requester_identities(self.spec, annotations),
            requester_known=approval_rules.requested_by(annotations) is not None,
            creator=approval_rules.requested_by(annotations),
            train_created=parse_time(self.body["metadata"].get("creationTimestamp")),
            approvals=list(self.ctx.store.approvals.get(self.namespace, {}).values()),
            standing_limits=policy.approval.standing,
        )
        if verdict.rejected:
            await self.provenance(wire.ProvenanceKind.APPROVAL, "decision", outcome="Rejected")
            self.draft.set_condition(
                ConditionType.APPROVED, "False", Reason.REJECTED, verdict.message
            )
            await self.finish(Summary.REJECTED, Reason.REJECTED, verdict.message)
            self.ctx.metrics.admission("Rejected", Reason.REJECTED)
            return False
        if not verdict.approved:
            if (
                self.draft.set_condition(
                    ConditionType.APPROVED, "False", verdict.reason, verdict.message
                )
                and reason_of(self.draft.original, ConditionType.APPROVED) != verdict.reason
            ):
                self.event("Normal", verdict.reason, verdict.message)
            self.mark_summary(Summary.AWAITING_APPROVAL)
            return False
        if verdict.standing is not None:
            await self.consume_standing(verdict.standing, policy)
        await self.provenance(
            wire.ProvenanceKind.APPROVAL,
            "decision",
            outcome=str(verdict.reason),
            approvers=", ".join(verdict.approvers) or None,
            standing=verdict.standing,
            specHash=current_hash,
        )
        self.draft.set_condition(ConditionType.APPROVED, "True", verdict.reason, verdict.message)
        if verdict.approvers:
            self.draft.set("approvedBy", list(verdict.approvers))
        admitted = condition(self.status, ConditionType.ADMITTED)
        since = parse_time(admitted.get("lastTransitionTime")) if admitted else None
        if since is not None:
            self.ctx.metrics.approval_wait.observe(max(0.0, (utcnow() - since).total_seconds()))
        marks = self.ctx.store.marks.get(self.uid)
        if marks is not None:
            marks.approved = time.monotonic()
        self.event("Normal", str(verdict.reason), verdict.message)
        return True

    async def consume_standing(self, name: str, policy: StationPolicySpec) -> None:
        """Count this run against a standing approval, once (idempotent by Train uid)."""
        approval = await self.ctx.kube.get(kubeapi.APPROVALS, self.namespace, name)
        status = approval.get("status") or {}
        consumed = list(status.get("consumedBy") or [])
        if self.uid in consumed:
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
        self.ctx.store.approvals[self.namespace][name] = approval  # the retry decides afresh
        if used >= max_runs:
            raise TransientError(f"standing approval {name} has no runs left")
        if expires is not None and expires <= utcnow():
            raise TransientError(f"standing approval {name} expired")
        patch = {
            "metadata": {"resourceVersion": approval["metadata"]["resourceVersion"]},
            "status": {"runsUsed": used + 1, "consumedBy": [*consumed, self.uid][-1000:]},
        }
        try:
            updated = await self.ctx.kube.patch(
                kubeapi.APPROVALS, self.namespace, name, patch, sub="status"
            )
        except ApiError as exc:
            raise TransientError(f"standing approval {name} changed meanwhile") from exc
        self.ctx.store.approvals[self.namespace][name] = updated
