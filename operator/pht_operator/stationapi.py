"""The operator's side of the wire contract with the station API (internal listener).

Paths and bodies come from :mod:`pht_contract.wire` only. Every call is idempotent, so a
reconcile that fails half-way simply repeats it. Failures raise :class:`StationApiError`; the
reconciler treats them as transient (retry on the next pass), never as a Train outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

import msgspec

from pht_contract import wire
from pht_contract.base import ApiModel
from pht_contract.hashing import canonical_json, sha256_hex, token_hash
from pht_contract.sparql import query_hash
from pht_contract.times import utc_in
from pht_contract.trains import TrainSpec
from pht_operator.runobjects import RunRequest
from pht_operator.sessions import Answer, Session, Unreachable
from pht_operator.settings import OperatorSettings


def approved_queries(spec: TrainSpec, hashes: Collection[str]) -> list[wire.ApprovedQuery]:
    """The Train's named queries whose hashes were approved, with their texts.

    The gateway executes these stored texts when a run names a query, so what the steward
    read and approved is what runs, whatever the train sends.
    """
    approved = set(hashes)
    found: list[wire.ApprovedQuery] = []
    for query in spec.queries or []:
        digest = query_hash(query.sparql)
        if digest in approved:
            found.append(wire.ApprovedQuery(name=query.name, sparql=query.sparql, hash=digest))
    return found


def build_registration(
    request: RunRequest,
    approved_hashes: Collection[str],
    token: str,
    requested_by: str | None = None,
    provenance: Sequence[wire.ProvenanceEvent] = (),
) -> wire.TrainRegistration:
    """What the station API must know before the run starts: who asked, what was approved (the
    query texts and their hashes), the policy that admitted it, the hash of the run's token and
    when the registration expires (the run's deadline plus the time it may wait to start).

    The operator and ``pht train run-local`` both register through this function, so a local
    rehearsal is registered exactly as a run at a station is. ``provenance``: the records of
    the steps that led here (admission, approval), which the station writes before its own
    record of the registration.
    """
    spec, policy = request.spec, request.policy
    return wire.TrainRegistration(
        uid=request.uid,
        namespace=request.namespace,
        name=request.name,
        spec_hash=request.spec_hash,
        image=spec.image,
        image_runs_as_built=not spec.command and not spec.args and spec.input_artifact is None,
        signed_review=spec.signed_review,
        token_hash=token_hash(token),
        approved_query_hashes=list(approved_hashes),
        approved_queries=approved_queries(spec, approved_hashes),
        allowed_graphs=list(spec.graphs or policy.data_access.allowed_graphs),
        policy=policy,
        policy_hash=sha256_hex(canonical_json(policy.wire())),
        requester_name=spec.requester.name,
        requester_organisation=spec.requester.organisation,
        requested_by=requested_by,
        expires_at=utc_in(request.timeout_seconds + policy.timeouts.pending_seconds),
        aggregates=list(spec.aggregates or ()),
        parameters=spec.parameters,
        provenance=list(provenance),
    )


class StationApiError(Exception):
    """The station API could not be reached or refused a call."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


Model = TypeVar("Model", bound=ApiModel)


def _read(model: type[Model], answer: Answer, call: str) -> Model:
    """The answer as ``model``; a malformed one is a :class:`StationApiError` (the reconciler
    retries it), never an exception the reconciler does not expect."""
    try:
        return model.model_validate_json(answer.body)
    except ValueError as exc:
        raise StationApiError(f"{call}: malformed answer", answer.status) from exc


class StationApi:
    def __init__(self, base_url: str, token: Callable[[], str | None], timeout: float) -> None:
        self._session = Session(base_url, timeout=timeout)
        self._token = token

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> StationApi:
        return cls(
            settings.station_api_url,
            settings.station_api_token,
            settings.station_api_timeout_seconds,
        )

    async def aclose(self) -> None:
        await self._session.aclose()

    async def _send(
        self, method: str, path: str, body: ApiModel | None = None, ok_missing: bool = False
    ) -> Answer:
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        content = None
        if body is not None:
            content = msgspec.json.encode(body.wire())
            headers["Content-Type"] = "application/json"
        try:
            answer = await self._session.request(method, path, body=content, headers=headers)
        except Unreachable as exc:
            raise StationApiError(f"{method} {path}: {exc}") from exc
        if ok_missing and answer.status == 404:
            return answer
        # Only a 2xx is done: a redirect (never followed) or anything else did not happen.
        if not answer.ok:
            raise StationApiError(f"{method} {path}: HTTP {answer.status}", answer.status)
        return answer

    async def register(self, registration: wire.TrainRegistration) -> wire.RegistrationReceipt:
        path = wire.TRAIN_REGISTRATION_PATH.format(uid=registration.uid)
        answer = await self._send("PUT", path, registration)
        return _read(wire.RegistrationReceipt, answer, f"PUT {path}")

    async def state(self, uid: str) -> wire.TrainState:
        path = wire.TRAIN_STATE_PATH.format(uid=uid)
        answer = await self._send("GET", path, ok_missing=True)
        if answer.status == 404:
            return wire.TrainState(uid=uid, registered=False)
        return _read(wire.TrainState, answer, f"GET {path}")

    async def complete(self, uid: str, completion: wire.RunCompletion) -> wire.TrainState | None:
        """Report the run's end; the answer is the Train's state after the gate decided (the
        same as :meth:`state`), or None if the station API answered without one."""
        answer = await self._send("PUT", wire.TRAIN_COMPLETION_PATH.format(uid=uid), completion)
        if answer.status != 200 or not answer.body:
            return None
        try:
            return wire.TrainState.model_validate_json(answer.body)
        except ValueError:
            return None

    async def deregister(self, uid: str) -> None:
        await self._send("DELETE", wire.TRAIN_REGISTRATION_PATH.format(uid=uid), ok_missing=True)

    async def record(self, event: wire.ProvenanceEvent) -> None:
        await self._send("POST", wire.PROVENANCE_PATH, event)
