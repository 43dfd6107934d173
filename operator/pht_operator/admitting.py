"""Admission: the spec parses, the namespace's StationPolicy admits it, a run slot is free.

Evaluation is the contract's pure ``evaluate``; capacity is first come, first served over the
watch cache plus the slots this process reserved but no watch event shows yet.
"""

from __future__ import annotations

import time

from pydantic import ValidationError

from pht_contract import constants, wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.evaluation import has_capacity
from pht_contract.hashing import spec_hash
from pht_contract.policies import StationPolicySpec
from pht_operator.decisions import decide, parse_train_spec
from pht_operator.endings import finish
from pht_operator.passes import (
    Next,
    TrainPass,
    carry_provenance,
    ensure_policy,
    event,
    load_policy,
    provenance,
)
from pht_operator.statuses import is_true, reason_of


async def initialise(train: TrainPass) -> Next:
    """A Train seen the first time: ``Admitted``, ``Approved`` and ``Succeeded`` start
    ``Unknown`` (written with the first decision, in the same status write)."""
    train.draft.initialise()
    return Next.CONTINUE


async def parse_spec(train: TrainPass) -> Next:
    """The spec as the contract models it; an invalid one ends ``Rejected``."""
    try:
        train.spec = parse_train_spec(train.body.get("spec") or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first.get("loc", ()))
        where = ".".join(str(p) for p in loc)
        # InvalidParameters only when it is about spec.parameters; anything else that the
        # CRD schema let through (or a cluster without it) is an invalid spec.
        about_parameters = loc[:1] == ("parameters",)
        reason = Reason.INVALID_PARAMETERS if about_parameters else Reason.INVALID_SPEC
        await reject(train, reason, f"spec.{where}: {first.get('msg')}")
        return Next.DONE
    return Next.CONTINUE


async def reject(train: TrainPass, reason: Reason | str, message: str) -> None:
    """``Admitted=False``: the Train ends ``Rejected``."""
    train.draft.set_condition(ConditionType.ADMITTED, "False", reason, message)
    await finish(train, Summary.REJECTED, reason, message)
    train.ctx.metrics.admission("Rejected", str(reason))


def _capacity_message(policy: StationPolicySpec, resumed: bool) -> str:
    # Stable text (no live count): a waiting Train's status is not rewritten per pass.
    limit = policy.limits.max_concurrent_trains
    if resumed:
        return (
            f"resumed, but the station runs at most {limit} Trains of this namespace at a time "
            "(spec.limits.maxConcurrentTrains); the run starts when a slot frees"
        )
    return (
        f"the station runs at most {limit} Trains of this namespace at a time "
        "(spec.limits.maxConcurrentTrains); admitted when a slot frees"
    )


def _slot_free(train: TrainPass, policy: StationPolicySpec) -> bool:
    view = train.ctx.view
    active = view.active_count(train.namespace, excluding=train.uid)
    return has_capacity(active + view.waiting_before(train.body), policy)


async def admit(train: TrainPass) -> Next:
    """Judge the Train against its namespace's policy and take a run slot (or wait for one)."""
    if is_true(train.status, ConditionType.ADMITTED):
        return Next.CONTINUE
    assert train.spec is not None
    ctx = train.ctx
    policy = await load_policy(train)
    if policy is None:
        await reject(
            train,
            Reason.NO_STATION_POLICY,
            f"namespace {train.namespace} has no valid StationPolicy named "
            f"{constants.STATION_POLICY_NAME!r}; this station does not run Trains here",
        )
        return Next.DONE
    train.policy = policy
    decision = decide(train.spec, policy)
    train.decision = decision
    if not decision.admitted:
        await provenance(
            train,
            wire.ProvenanceKind.ADMISSION,
            "decision",
            outcome="Rejected",
            reason=decision.reason,
        )
        await reject(train, decision.reason, decision.message)
        return Next.DONE
    if not _slot_free(train, policy):
        message = _capacity_message(policy, resumed=False)
        if (
            train.draft.set_condition(
                ConditionType.ADMITTED, "False", Reason.CONCURRENCY_LIMIT_REACHED, message
            )
            and reason_of(train.draft.original, ConditionType.ADMITTED)
            != Reason.CONCURRENCY_LIMIT_REACHED
        ):
            ctx.metrics.admission("Waiting", Reason.CONCURRENCY_LIMIT_REACHED)
            event(train, "Normal", Reason.CONCURRENCY_LIMIT_REACHED, message, action="Admit")
        train.draft.set_summary(Summary.WAITING)
        return Next.DONE
    ctx.view.reserved[train.namespace].add(train.uid)
    carry_provenance(train, wire.ProvenanceKind.ADMISSION, "decision", outcome="Admitted")
    train.draft.set_condition(ConditionType.ADMITTED, "True", Reason.ADMITTED, decision.message)
    if not train.status.get("specHash"):
        # Kept when re-admitted after waiting: it is the hash already approved.
        train.draft.set("specHash", spec_hash(train.spec))
    train.draft.set_summary(Summary.PENDING)
    marks = ctx.view.marks.get(train.uid)
    if marks is not None:
        marks.admitted = time.monotonic()
        ctx.metrics.admission_latency.observe(marks.admitted - marks.first_seen)
    ctx.metrics.admission("Admitted", Reason.ADMITTED)
    event(train, "Normal", Reason.ADMITTED, "admitted by the station policy", action="Admit")
    return Next.CONTINUE


async def resume_within_capacity(train: TrainPass) -> Next:
    """A Train leaving ``Suspended`` gave its slot back: take one again, or wait for one
    (``Admitted=False/ConcurrencyLimitReached``, re-admitted first come, first served)."""
    if train.run.get("jobUid") or train.status.get("summary") != Summary.SUSPENDED:
        return Next.CONTINUE
    policy = await ensure_policy(train)
    if _slot_free(train, policy):
        train.ctx.view.reserved[train.namespace].add(train.uid)
        return Next.CONTINUE
    message = _capacity_message(policy, resumed=True)
    train.draft.set_condition(
        ConditionType.ADMITTED, "False", Reason.CONCURRENCY_LIMIT_REACHED, message
    )
    train.ctx.metrics.admission("Waiting", Reason.CONCURRENCY_LIMIT_REACHED)
    event(train, "Normal", Reason.CONCURRENCY_LIMIT_REACHED, message, action="Admit")
    train.draft.set_summary(Summary.WAITING)
    return Next.DONE
