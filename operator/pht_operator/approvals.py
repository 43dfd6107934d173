"""Whether a Train is approved: per-Train approvals bound to its spec hash, or a standing one.

Pure: the reconciler passes the TrainApproval objects of the Train's namespace. Rules
(docs/adr/0001-approval-model.md): an approval counts only for the exact spec hash; approvers
must differ from each other and from the requester; any matching rejection is final. A standing
approval covers a Train only if it names the Train's requester (the requested-by annotation)
and the Train has exactly its image digest, ``command``, ``args`` and ``graphs``, brings no
input artifact it does not list, names queries that are all among its query hashes, and keeps
every parameter inside its declared bounds; it must have runs left and not be expired (a Train
that already consumed a run of it stays covered, so a restart never counts twice). A standing
approval counts as *one* approver: under a two-steward policy a second, different steward must
still approve the Train itself."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from pydantic import ValidationError

from pht_contract import constants
from pht_contract.approvals import StandingScope, TrainApproval
from pht_contract.conditions import Reason
from pht_contract.hashing import aggregates_hash
from pht_contract.objects import Obj
from pht_contract.parameters import ParameterRefusal, check_parameters
from pht_contract.policies import StandingApprovalLimits
from pht_contract.times import parse_utc, utc_now
from pht_contract.trains import TrainSpec


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
    expires = parse_utc(expires_at) if expires_at else None
    if limits is not None:
        max_runs = min(max_runs, limits.max_runs)
        since = parse_utc(str(created or ""))
        if since is not None:
            cap = since + datetime.timedelta(days=limits.max_days)
            expires = cap if expires is None else min(expires, cap)
    return max_runs, expires


def _same_list(approved: list[str] | None, given: list[str] | None) -> bool:
    # Unset and empty both mean "no override" in the Job, so they are the same here.
    return list(approved or []) == list(given or [])


def scope_mismatch(
    scope: StandingScope,
    spec: TrainSpec,
    query_hashes: tuple[str, ...],
    creator: str | None,
) -> tuple[str, str] | None:
    """Why a standing approval does not cover this Train (reason, message), or None.

    Only a parameter outside the bounds gets its own reason
    (:attr:`Reason.PARAMETERS_OUTSIDE_APPROVAL`): everything else is simply another Train."""
    if scope.image_digest != spec.image_digest:
        return str(Reason.AWAITING_APPROVAL), "covers another image digest"
    if creator is None or creator not in scope.requesters:
        return str(Reason.AWAITING_APPROVAL), "does not name this Train's requester"
    if not _same_list(scope.command, spec.command):
        return str(Reason.AWAITING_APPROVAL), "covers another command"
    if not _same_list(scope.args, spec.args):
        return str(Reason.AWAITING_APPROVAL), "covers other args"
    if set(scope.graphs or []) != set(spec.graphs or []):
        return str(Reason.AWAITING_APPROVAL), "covers other graphs"
    # What the station computes and releases is part of what was approved.
    if aggregates_hash(spec) != scope.aggregates_hash:
        return str(Reason.AWAITING_APPROVAL), "covers other aggregates"
    # The approved image may read its settings from an artifact as well as from parameters.
    if spec.input_artifact is not None and spec.input_artifact.sha256 not in scope.input_artifacts:
        return str(Reason.AWAITING_APPROVAL), "does not cover this Train's input artifact"
    # A Train without queries may send any read-only query: never covered by a standing one.
    if not query_hashes or not set(query_hashes) <= set(scope.query_hashes):
        return str(Reason.AWAITING_APPROVAL), "does not cover every query of this Train"
    try:
        check_parameters(spec.parameters, scope.parameters)
    except ParameterRefusal as exc:
        return str(Reason.PARAMETERS_OUTSIDE_APPROVAL), f"parameters outside its bounds: {exc}"
    return None


def _for_an_earlier_train(
    approval: TrainApproval,
    approved_uid: str | None,
    train_uid: str,
    train_created: datetime.datetime | None,
) -> bool:
    if approved_uid is not None:
        return approved_uid != train_uid
    # No uid (written by hand): the API server's timestamps still tell an approval of an
    # earlier Train of the same name (second resolution: the same second counts as after).
    made = parse_utc(str(approval.metadata.get("creationTimestamp") or ""))
    return made is not None and train_created is not None and made < train_created


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
    creator: str | None = None,
    train_created: datetime.datetime | None = None,
) -> ApprovalVerdict:
    """Whether the Train may run; a standing approval is capped by the policy's limits
    (``approval.standing``: at most ``maxRuns`` runs and ``maxDays`` from its creation),
    whatever larger figures the approval itself names. Without a known requester
    (``requester_known``: the requested-by annotation) no approval counts at all;
    ``creator`` is that annotation's username, which a standing approval must name. A
    per-Train approval made for an earlier Train of the same name (another ``uid``, or
    created before ``train_created``) does not count: deleting and re-creating a Train
    never replays its approval."""
    if not requester_known:
        return ApprovalVerdict(Reason.AWAITING_APPROVAL, NO_REQUESTER_MESSAGE)
    now = now or utc_now()
    approvers: list[str] = []
    ignored: list[str] = []
    outside: list[str] = []
    standing_match: tuple[str, str] | None = None
    for name, approval in sorted(_parse(approvals), key=lambda pair: pair[0]):
        spec_ = approval.spec
        who = spec_.approver.strip()
        if spec_.train is not None:
            if spec_.train.name != train_name or spec_.train.spec_hash != spec_hash:
                continue
            if _for_an_earlier_train(approval, spec_.train.uid, train_uid, train_created):
                ignored.append(f"{name}: made for an earlier Train of this name")
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
            mismatch = scope_mismatch(scope, spec, query_hashes, creator)
            if mismatch is not None:
                why, message = mismatch
                if why == Reason.PARAMETERS_OUTSIDE_APPROVAL:
                    outside.append(f"standing approval {name}: {message}")
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
                standing_match = (name, who)
    if len(approvers) >= required:
        # Approvals of this exact spec suffice: no standing run is spent.
        return ApprovalVerdict(
            Reason.APPROVED,
            f"approved by {', '.join(approvers)}",
            approvers=tuple(approvers),
            ignored=tuple(ignored),
        )
    if standing_match is not None:
        # One standing approval is one steward's decision: it never counts twice, and a
        # per-Train approval by the same steward adds nothing.
        name, who = standing_match
        others = [a for a in approvers if a.lower() != who.lower()]
        counted = [who, *others]
        if len(counted) >= required:
            return ApprovalVerdict(
                Reason.STANDING_APPROVAL,
                f"covered by standing approval {name}"
                + (f" and approved by {', '.join(others)}" if others else ""),
                approvers=tuple(others),
                standing=name,
                ignored=tuple(ignored),
            )
        approvers = counted
    needed = required - len(approvers)
    message = (
        f"waiting for {needed} more approval(s) of spec hash {spec_hash} by a steward "
        "other than the requester"
    )
    if standing_match is not None:
        message += (
            f"; standing approval {standing_match[0]} counts as one approver "
            f"({standing_match[1]}) and the policy requires {required}"
        )
    elif approvers:
        message += f"; approved so far by {', '.join(approvers)}"
    if ignored:
        message += "; not counted: " + "; ".join(ignored)
    if outside and standing_match is None:
        message = "; ".join(outside) + "; " + message
        return ApprovalVerdict(
            Reason.PARAMETERS_OUTSIDE_APPROVAL,
            message,
            approvers=tuple(approvers),
            ignored=tuple(ignored),
        )
    return ApprovalVerdict(
        Reason.AWAITING_APPROVAL,
        message,
        approvers=tuple(approvers),
        ignored=tuple(ignored),
    )
