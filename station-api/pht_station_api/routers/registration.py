"""The operator's side of the internal listener: register and deregister trains, load data.

Registration is an idempotent ``PUT`` keyed by the Train's uid (201 when new, 200 when the same
uid is registered again); deregistration revokes the token at once (204, also for an unknown or
already revoked uid, so a retrying operator converges). Both are provenance records, written by
the station itself; a registration also brings the operator's records of the Train's admission
and approval, which the station writes just before it.
"""

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from pht_contract.sparql import query_hash
from pht_contract.wire import (
    INTERNAL_PREFIX,
    TRAIN_REGISTRATION_PATH,
    ProvenanceKind,
    RegistrationReceipt,
    TrainRegistration,
)
from pht_station_api.bodylimits import allow_body
from pht_station_api.deps import OperatorDep, StateDep
from pht_station_api.errors import (
    Conflict,
    InvalidRegistration,
    LoadFailed,
    UnsupportedMediaType,
)
from pht_station_api.gateway.executions import forget_train
from pht_station_api.provenance import InvalidRecordError
from pht_station_api.provenance.operatorsteps import check_carried, record_carried
from pht_station_api.registry import parse_timestamp
from pht_station_api.responses import LoadReceipt, refusal
from pht_station_api.triplestores.loading import DEFAULT_GRAPH, MEDIA_TYPES

#: Operator-authenticated bulk load into a named graph of the embedded store.
LOAD_PATH: Final = INTERNAL_PREFIX + "/graphs"

router = APIRouter(tags=["operator"])


@router.put(
    TRAIN_REGISTRATION_PATH,
    response_model=RegistrationReceipt,
    responses={
        201: {"model": RegistrationReceipt, "description": "Registered"},
        401: refusal("Unauthenticated"),
        409: refusal("Conflict (revoked uid or token hash in use)"),
    },
)
def register_train(
    uid: str, registration: TrainRegistration, state: StateDep, _: OperatorDep
) -> JSONResponse:
    """Register (or re-register) an admitted, approved train with its token's hash."""
    if registration.uid != uid:
        raise Conflict("the uid in the path and in the body differ")
    if not registration.allowed_graphs:
        raise InvalidRegistration("a train must be allowed at least one graph")
    try:
        parse_timestamp(registration.expires_at)
    except ValueError:
        raise InvalidRegistration("expiresAt is not an RFC 3339 timestamp") from None
    outside = sorted(
        set(registration.allowed_graphs) - set(registration.policy.data_access.allowed_graphs)
    )
    if outside:
        raise Conflict(f"allowed graphs outside the policy snapshot: {', '.join(outside)}")
    _check_approved_queries(registration)
    try:
        check_carried(registration)
    except InvalidRecordError as exc:
        raise InvalidRegistration(str(exc)) from None
    train, created = state.registry.register(registration)
    forget_train(uid)
    # The steps that led here (admission, approval) come first in the chain, then this one.
    record_carried(state.chain, registration)
    state.chain.record(
        ProvenanceKind.REGISTRATION,
        train_uid=uid,
        actor="operator",
        details={
            "namespace": registration.namespace,
            "name": registration.name,
            "specHash": registration.spec_hash,
            "policyHash": registration.policy_hash,
            "requesterOrganisation": registration.requester_organisation,
            "approvedQueries": len(registration.approved_query_hashes),
            "expiresAt": registration.expires_at,
            "created": created,
        },
    )
    receipt = RegistrationReceipt(uid=uid, created=created, registered_at=train.registered_at)
    return JSONResponse(receipt.wire(), status_code=201 if created else 200)


def _check_approved_queries(registration: TrainRegistration) -> None:
    """Each stored query text must be one the approval covers, under its own hash and name.

    The gateway runs these texts when a train names them, so a text whose hash is not an
    approved hash (or that is stored under another query's hash) is refused here.
    """
    names: set[str] = set()
    approved = set(registration.approved_query_hashes)
    for query in registration.approved_queries:
        if query.name in names:
            raise InvalidRegistration(f"approved query {query.name!r} is listed twice")
        names.add(query.name)
        if query_hash(query.sparql) != query.hash:
            raise InvalidRegistration(f"approved query {query.name!r} does not match its hash")
        if query.hash not in approved:
            raise InvalidRegistration(f"approved query {query.name!r} is not an approved hash")


@router.delete(
    TRAIN_REGISTRATION_PATH,
    status_code=204,
    responses={401: refusal("Unauthenticated")},
)
def deregister_train(uid: str, state: StateDep, _: OperatorDep) -> Response:
    """Revoke a train's token at once; its records stay for the gate and the audit."""
    train = state.registry.get(uid)
    was_active = train is not None and not train.revoked
    state.registry.deregister(uid)
    if was_active:
        state.rate_limits.forget(uid)
        forget_train(uid)
        state.chain.record(
            ProvenanceKind.DEREGISTRATION, train_uid=uid, actor="operator", details={}
        )
    return Response(status_code=204)


@router.post(
    LOAD_PATH,
    response_model=LoadReceipt,
    responses={
        401: refusal("Unauthenticated"),
        400: refusal("LoadFailed"),
        413: refusal("RequestTooLarge"),
        415: refusal("UnsupportedMediaType"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in MEDIA_TYPES},
        }
    },
)
async def load_graph(
    request: Request,
    state: StateDep,
    _: OperatorDep,
    graph: Annotated[str, Query(max_length=512, pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")] = (
        DEFAULT_GRAPH
    ),
) -> dict[str, int | str]:
    """Bulk-load RDF into a named graph (the API is then the store's only writer)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None:
        raise UnsupportedMediaType("send Turtle, N-Triples, N-Quads or TriG")
    allow_body(request, state.settings.max_load_bytes)
    body = await request.body()
    if not body:
        raise LoadFailed("the request body is empty")
    quads = await state.store.load(body, fmt, graph)
    return {"graph": graph, "quads": quads}
