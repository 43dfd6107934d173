"""Operator provenance events (internal listener): admission, approval, run, policy change.

Admission and approval records may also ride in the registration, and the run's facts in the
completion call (:mod:`pht_station_api.provenance.operatorsteps`); this route takes the rest.

The operator may retry a ``POST`` after a timeout; the event's ``eventId`` makes the record
idempotent, so the chain holds each event once and the answer names the same record hash.
"""

from typing import Any

from fastapi import APIRouter

from pht_contract.wire import PROVENANCE_PATH, ProvenanceEvent
from pht_station_api.deps import OperatorDep, StateDep
from pht_station_api.errors import StationApiError
from pht_station_api.provenance import InvalidRecordError, operatorsteps
from pht_station_api.responses import EventReceipt, refusal

router = APIRouter(tags=["provenance"])


class InvalidEvent(StationApiError):
    status = 422
    reason = "InvalidEvent"


@router.post(
    PROVENANCE_PATH,
    response_model=EventReceipt,
    responses={
        401: refusal("Unauthenticated"),
        422: refusal("InvalidEvent"),
    },
)
def record_event(event: ProvenanceEvent, state: StateDep, _: OperatorDep) -> dict[str, Any]:
    """Append the operator's event to the chain (once per ``eventId``)."""
    try:
        record_hash = operatorsteps.record_event(state.chain, event)
    except InvalidRecordError as exc:
        raise InvalidEvent(str(exc)) from None
    return {"eventId": event.event_id, "recordHash": record_hash}
