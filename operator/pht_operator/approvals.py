"""Whether a Train is approved: per-Train approvals bound to its spec hash, or a standing one.

Pure: the reconciler passes the TrainApproval objects of the Train's namespace. Rules
(ARCHITECTURE.md): an approval counts only for the exact spec hash; approvers must differ from
each other and from the requester; any matching rejection is final; a standing approval covers
the image digest and every query hash of the Train and must have runs left and not be expired
(a Train that already consumed a run of it stays covered, so a restart never counts twice).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pht_contract import constants
from pht_contract.approvals import TrainApproval
from pht_contract.conditions import Reason
from pht_contract.policies import StandingApprovalLimits
from pht_contract.trains import TrainSpec
from pht_operator.statuses import parse_time

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApprovalVerdict:
    reason: Reason
    message: str
    approvers: tuple[str, ...] = ()
    #: The standing approval (name) whose run count must be incremented before running.
    standing: str | None = None
    ignored: tuple[str, ...] = field(default_factory=tuple)

    @property
    def approved(self) -> bool:
        return self.reason in (Reason.APPROVED, Reason.STANDING_APPROVAL)

    @property
    def rejected(self) -> bool:
        return self.reason == Reason.REJECTED


def requested_by(annotations: dict[str, str]) -> str | None:
    """The authenticated creator of the Train, as the station's admission policy recorded it.

    ``spec.requester`` is free text the researcher writes; only this annotation (set to
    ``request.userInfo.username`` on create and immutable afterwards) ties a Train to an
    identity that approvers can be checked against.
    """
    creator = (annotations.get(constants.ANNOTATION_REQUESTED_BY) or "").strip()
    return creator or None


def requester_identities(spec: TrainSpec, annotations: dict[str, str]) -> set[str]:
    """Who asked: the requester's name and contact, and the creator if admission recorded it."""
    found = {spec.requester.name.strip().lower(), spec.requester.contact.strip().lower()}
    creator = requested_by(annotations)
    if creator:
        found.add(creator.lower())
    return found


NO_REQUESTER_MESSAGE = (
    f"the Train carries no {constants.ANNOTATION_REQUESTED_BY} annotation (set by the station's "
    "admission policy), so approvers cannot be checked against the requester; no approval "
    "counts until it is present"
)


def standing_caps(
    max_runs: int,
    expires_at: str | None,
    created: object,
    limits: StandingApprovalLimits | None,
) -> tuple[int, datetime.datetime | None]:
    """A standing approval's effective run cap and expiry: its own figures, capped by the
    policy's ``approval.standing`` (``maxRuns``, and ``maxDays`` from its creation)."""
    expires = parse_time(expires_at) if expires_at else None
    if limits is not None:
        max_runs = min(max_runs, limits.max_runs)
        since = parse_time(str(created or ""))
        if since is not None:
            cap = since + datetime.timedelta(days=limits.max_days)
            expires = cap if expires is None else min(expires, cap)
    return max_runs, expires


def _parse(objects: list[Obj]) -> list[tuple[str, TrainApproval]]:
    parsed = []
    for obj in objects:
        try:
            body = {
                k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec", "status") if k in obj
            }
            if body.get("status") is None:
                body.pop("status", None)
            parsed.append((str(obj["metadata"]["name"]), TrainApproval.model_validate(body)))
        except (ValidationError, KeyError):
            continue
    return parsed


def decide(
    *,
    train_name: str,
    train_uid: str,
    spec: TrainSpec,
    spec_hash: str,
    query_hashes: tuple[str, ...],
    required: int,
    requester: set[str],
    approvals: list[Obj],
    now: datetime.datetime | None = None,
    standing_limits: StandingApprovalLimits | None = None,
    requester_known: bool = True,
) -> ApprovalVerdict:
    """Whether the Train may run; a standing approval is capped by the policy's limits
    (``approval.standing``: at most ``maxRuns`` runs and ``maxDays`` from its creation),
    whatever larger figures the approval itself names. Without a known requester
    (``requester_known``: the requested-by annotation) no approval counts at all."""
    if not requester_known:
        return ApprovalVerdict(Reason.AWAITING_APPROVAL, NO_REQUESTER_MESSAGE)
    now = now or datetime.datetime.now(datetime.UTC)
    approvers: list[str] = []
    ignored: list[str] = []
    standing_match: str | None = None
    for name, approval in sorted(_parse(approvals), key=lambda pair: pair[0]):
        spec_ = approval.spec
        who = spec_.approver.strip()
        if spec_.train is not None:
            if spec_.train.name != train_name or spec_.train.spec_hash != spec_hash:
                continue
            if who.lower() in requester:
                ignored.append(f"{name}: the requester cannot approve their own Train")
                continue
            if spec_.decision == "Reject":
                return ApprovalVerdict(
                    Reason.REJECTED,
                    f"rejected by {who}" + (f": {spec_.comment}" if spec_.comment else ""),
                )
            if who.lower() not in {a.lower() for a in approvers}:
                approvers.append(who)
            else:
                ignored.append(f"{name}: {who} already approved; approvers must differ")
        elif spec_.standing is not None and spec_.decision == "Approve":
            scope = spec_.standing
            status = approval.status
            used = status.runs_used if status else 0
            consumed = train_uid in (status.consumed_by if status else [])
            max_runs, expires = standing_caps(
                scope.max_runs,
                scope.expires_at,
                approval.metadata.get("creationTimestamp"),
                standing_limits,
            )
            if scope.image_digest != spec.image_digest:
                continue
            if not set(query_hashes) <= set(scope.query_hashes):
                continue
            if who.lower() in requester:
                ignored.append(f"{name}: the requester cannot approve their own Train")
                continue
            if expires is not None and expires <= now and not consumed:
                ignored.append(f"{name}: standing approval expired")
                continue
            if used >= max_runs and not consumed:
                ignored.append(f"{name}: standing approval has no runs left")
                continue
            if standing_match is None or consumed:
                standing_match = name
    if standing_match is not None:
        return ApprovalVerdict(
            Reason.STANDING_APPROVAL,
            f"covered by standing approval {standing_match}",
            standing=standing_match,
            ignored=tuple(ignored),
        )
    if len(approvers) >= required:
        return ApprovalVerdict(
            Reason.APPROVED,
            f"approved by {', '.join(approvers)}",
            approvers=tuple(approvers),
            ignored=tuple(ignored),
        )
    needed = required - len(approvers)
    message = (
        f"waiting for {needed} more approval(s) of spec hash {spec_hash} by a steward "
        "other than the requester"
    )
    if approvers:
        message += f"; approved so far by {', '.join(approvers)}"
    if ignored:
        message += "; not counted: " + "; ".join(ignored)
    return ApprovalVerdict(
        Reason.AWAITING_APPROVAL, message, approvers=tuple(approvers), ignored=tuple(ignored)
    )
