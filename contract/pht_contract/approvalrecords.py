"""The one way a steward's decision on a Train becomes a ``TrainApproval`` object.

``pht approve`` / ``pht reject`` and the steward console both build their objects here, so an
approval recorded from either is the same object: bound to the spec hash the Train was admitted
with (its ``status.specHash``) and to the Train's uid, named after the Train, the approver and
the hash, so one approver records one decision per spec hash.

:func:`approval_refusal` says why an approval could never count (the spec changed since
admission, or the StationPolicy as it is now refuses the Train), so neither asks a steward for
a decision the operator would ignore.
"""

import re
from typing import Any, Final, Literal

from pydantic import ValidationError

from pht_contract import constants
from pht_contract.evaluation import evaluate
from pht_contract.hashing import spec_hash as hash_of
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec

Decision = Literal["Approve", "Reject"]
DECISIONS: Final[tuple[Decision, ...]] = ("Approve", "Reject")


class NotAdmitted(ValueError):
    """The Train has no spec hash yet: there is nothing an approval could be bound to."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "steward"


def admitted_spec_hash(train: Obj) -> str:
    """The spec hash recorded at admission; :class:`NotAdmitted` when there is none yet."""
    value = (train.get("status") or {}).get("specHash")
    if not value:
        name = (train.get("metadata") or {}).get("name", "?")
        raise NotAdmitted(f"Train {name} has no spec hash yet (not admitted)")
    return str(value)


def approval_name(train_name: str, approver: str, spec_hash: str) -> str:
    """One name per Train, approver and spec hash (a second decision collides with the first)."""
    return f"{_slug(train_name)[:180]}-{_slug(approver)}-{spec_hash[:8]}"


def train_approval(train: Obj, approver: str, decision: Decision, comment: str | None) -> Obj:
    """The ``TrainApproval`` recording ``approver``'s decision on ``train`` as admitted."""
    spec_hash = admitted_spec_hash(train)
    metadata = train["metadata"]
    spec: dict[str, Any] = {
        "train": {
            "name": metadata["name"],
            "specHash": spec_hash,
            # Never counts for a later Train re-created under the same name.
            "uid": metadata["uid"],
        },
        "decision": decision,
        "approver": approver,
    }
    if comment:
        spec["comment"] = comment
    return {
        "apiVersion": constants.GROUP_VERSION,
        "kind": constants.APPROVAL_KIND,
        "metadata": {
            "name": approval_name(metadata["name"], approver, spec_hash),
            "namespace": metadata["namespace"],
        },
        "spec": spec,
    }


def approval_refusal(train: Obj, policy: Obj | None) -> str:
    """Why an approval of ``train`` could never count (empty when it could), judging the Train
    as it is now against its namespace's StationPolicy object (``None``: there is none)."""
    admitted = admitted_spec_hash(train)
    namespace = (train.get("metadata") or {}).get("namespace", "?")
    try:
        spec = TrainSpec.model_validate(train.get("spec") or {})
    except ValidationError as exc:
        return f"its spec is invalid ({exc.error_count()} problem(s)); it cannot run"
    current = hash_of(spec)
    if current != admitted:
        return (
            f"its spec changed after admission (admitted spec hash {admitted}, current {current}); "
            "it will not run: ask for a new Train"
        )
    if policy is None:
        return f"namespace {namespace} has no StationPolicy {constants.STATION_POLICY_NAME!r}"
    try:
        policy_spec = StationPolicySpec.model_validate(policy.get("spec") or {})
    except ValidationError:
        return f"the StationPolicy in {namespace} is invalid"
    verdict = evaluate(spec, policy_spec)
    if not verdict.admitted:
        return f"the station policy refuses it as it is now [{verdict.reason}]: {verdict.message}"
    return ""
