"""The operator's steps in the chain: posted on their own, or carried by a call it makes anyway.

The operator posts a record of each step it takes (``POST /internal/v1/provenance``). The
records of the steps before a run is registered (its admission and approval) may instead ride
in the registration, and the facts of the run itself (its Job, when it was created, how many
attempts, how it ended) in the completion call: the station writes them as part of those
calls, so a Train's story costs the operator no extra request. Either way a record is written
once per ``eventId``, with the same checks, so a retried call repeats nothing.
"""

from typing import Final

from pht_contract.wire import (
    DetailValue,
    ProvenanceEvent,
    ProvenanceKind,
    RunCompletion,
    TrainRegistration,
)
from pht_station_api.provenance.chain import ProvenanceChain
from pht_station_api.provenance.records import InvalidRecordError, check_fields

#: The steps a registration may carry: those that come before it.
CARRIED_KINDS: Final = frozenset({ProvenanceKind.ADMISSION, ProvenanceKind.APPROVAL})
#: Who records the run at completion (as for the registration the station records itself).
RUN_ACTOR: Final = "operator"


def run_event_id(uid: str) -> str:
    """The run's record: one per Train, whichever side writes it."""
    return f"{uid}:{ProvenanceKind.RUN.value}:ended"


def event_details(event: ProvenanceEvent) -> dict[str, DetailValue]:
    """The event's details, checked, with the Train's namespace and name added."""
    details: dict[str, DetailValue] = dict(event.details)
    if event.namespace is not None:
        details.setdefault("namespace", event.namespace)
    if event.name is not None:
        details.setdefault("name", event.name)
    return check_fields(event.actor, event.train_uid, event.event_id, event.at, details)


def record_event(chain: ProvenanceChain, event: ProvenanceEvent) -> str:
    """Append one operator event (once per ``eventId``); its record hash."""
    return chain.record(
        event.kind,
        train_uid=event.train_uid,
        actor=event.actor,
        details=event_details(event),
        event_id=event.event_id,
        at=event.at,
    )


def check_carried(registration: TrainRegistration) -> None:
    """Refuse (``InvalidRecordError``) carried records that are not this Train's admission or
    approval, or that the chain would refuse: checked before anything is written."""
    for event in registration.provenance:
        if event.kind not in CARRIED_KINDS:
            raise InvalidRecordError(
                f"a registration carries only admission and approval records, not {event.kind}"
            )
        if event.train_uid != registration.uid:
            raise InvalidRecordError("a carried record must be about the Train registered")
        event_details(event)


def record_carried(chain: ProvenanceChain, registration: TrainRegistration) -> None:
    """Write the records the registration carries (checked by :func:`check_carried`)."""
    for event in registration.provenance:
        record_event(chain, event)


def record_run(
    chain: ProvenanceChain, registration: TrainRegistration, completion: RunCompletion
) -> None:
    """The run's record from the facts the completion call carries (nothing if it names no
    Job: a caller that does not send them posts the run's record itself)."""
    if completion.job_uid is None:
        return
    details: dict[str, DetailValue] = {
        "namespace": registration.namespace,
        "name": registration.name,
        "jobUid": completion.job_uid,
        "jobCreatedAt": completion.job_created_at,
        "attempts": completion.attempts,
        "jobSucceeded": completion.job_succeeded,
        "reason": completion.reason,
    }
    # Within the chain's bounds by the contract (short strings, a bounded count), so the
    # chain refuses nothing here that the request's validation let through.
    chain.record(
        ProvenanceKind.RUN,
        train_uid=registration.uid,
        actor=RUN_ACTOR,
        details={key: value for key, value in details.items() if value is not None},
        event_id=run_event_id(registration.uid),
    )
