"""The operator's part in a rehearsal, done with the operator's own code.

The run request, the Job and the Secret come from :mod:`pht_operator.runobjects`, the registration
from :func:`pht_operator.stationapi.build_registration`, the names from
:func:`pht_operator.names.run_names`; the calls go through the operator's client. A random token
is minted and only its hash is registered, with the approved query hashes and a policy snapshot.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Final

from pht_contract.conditions import Reason
from pht_contract.hashing import spec_hash
from pht_contract.policies import ImageReview, StationPolicySpec
from pht_contract.times import utc_in, utc_iso
from pht_contract.wire import (
    ProvenanceEvent,
    ProvenanceKind,
    RunCompletion,
    TrainState,
)
from pht_operator.names import run_names
from pht_operator.runobjects import RunRequest
from pht_operator.stationapi import build_registration
from pht_sandbox.rehearsal.inputs import AdmittedTrain
from pht_sandbox.rehearsal.stationprocess import OperatorCalls
from pht_station_api.disclosure.trust import image_digest

#: Who the provenance chain names for the operator's part in a local run.
ACTOR: Final = "pht-train-run-local"

#: Who reviews the image in a local rehearsal: the author, for their own run.
LOCAL_REVIEWER: Final = "local-rehearsal"


def record(
    operator: OperatorCalls,
    kind: ProvenanceKind,
    train: AdmittedTrain,
    uid: str,
    step: str,
    **details: Any,
) -> None:
    operator.record(
        ProvenanceEvent(
            event_id=f"{uid}:{kind.value}:{step}",
            kind=kind,
            train_uid=uid,
            namespace=train.namespace,
            name=train.name,
            actor=ACTOR,
            at=utc_iso(),
            details=details,
        )
    )


def reviewed_locally(policy: StationPolicySpec, image: str) -> StationPolicySpec:
    """The policy with this image's digest reviewed, for one day, by the author rehearsing it.

    A local run skips the steward's review of the image as it skips approval, so the gate's
    checks alone decide what the author sees. At a station the result of an image that has no
    current steward's review in ``reviewedImages`` waits for a steward.
    """
    digest = image_digest(image)
    if digest is None:
        return policy
    review = ImageReview(
        digest=digest,
        reviewer=LOCAL_REVIEWER,
        reviewed_at=utc_iso(),
        expires_at=utc_in(24 * 3600),
        notes="a local rehearsal: the author runs their own code",
    )
    disclosure = policy.disclosure.model_copy(
        update={"reviewed_images": [*policy.disclosure.reviewed_images, review]}
    )
    return policy.model_copy(update={"disclosure": disclosure})


def register(
    operator: OperatorCalls, train: AdmittedTrain, policy: StationPolicySpec
) -> tuple[RunRequest, str]:
    """Mint the token, register its hash (idempotent ``PUT`` keyed by uid) like the operator."""
    uid = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    spec, decision = train.spec, train.decision
    policy = reviewed_locally(policy, spec.image)
    request = RunRequest(
        uid=uid,
        namespace=train.namespace,
        name=train.name,
        spec=spec,
        spec_hash=spec_hash(spec),
        policy=policy,
        timeout_seconds=decision.timeout_seconds,
        names=run_names(uid, train.name),
    )
    registration = build_registration(request, decision.approved_query_hashes, token)
    operator.register(registration)
    record(
        operator, ProvenanceKind.REGISTRATION, train, uid, "registered", specHash=request.spec_hash
    )
    return request, token


def complete(
    operator: OperatorCalls, train: AdmittedTrain, uid: str, code: int | None
) -> TrainState:
    """Report the Job's outcome as the operator does; the gate decides on the final upload."""
    if code == 0:
        reason = Reason.RUN_COMPLETED.value
    elif code is None:
        reason = Reason.DEADLINE_EXCEEDED.value
    else:
        reason = Reason.BACKOFF_LIMIT_EXCEEDED.value
    record(operator, ProvenanceKind.RUN, train, uid, "finished", reason=reason)
    operator.complete(uid, RunCompletion(job_succeeded=code == 0, reason=reason))
    return operator.state(uid)
