"""The operator's side of the wire contract with the station API (internal listener).

Paths and bodies come from :mod:`pht_contract.wire` only. Every call is idempotent, so a
reconcile that fails half-way simply repeats it. Failures raise :class:`StationApiError`; the
reconciler treats them as transient (retry on the next pass), never as a Train outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import httpx2

from pht_contract import wire
from pht_contract.base import ApiModel
from pht_contract.hashing import canonical_json, sha256_hex, token_hash
from pht_contract.sparql import query_hash
from pht_contract.times import utc_in
from pht_contract.trains import TrainSpec
from pht_operator.runobjects import RunRequest
from pht_operator.settings import OperatorSettings
from pht_operator.transport import http_transport


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


class StationApi:
    def __init__(self, base_url: str, token: Callable[[], str | None], timeout: float) -> None:
        # No proxy from the environment: it would read the operator credential over plain HTTP.
        self._client = httpx2.AsyncClient(
            timeout=timeout, trust_env=False, transport=http_transport()
        )
        # Requests go to absolute URLs: joining a relative path to a base URL costs the HTTP
        # client as much as parsing the URL itself, on every call.
        self._base = base_url.rstrip("/")
        self._token = token

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> StationApi:
        return cls(
            settings.station_api_url,
            settings.station_api_token,
            settings.station_api_timeout_seconds,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(
        self, method: str, path: str, body: ApiModel | None = None, ok_missing: bool = False
    ) -> httpx2.Response:
        headers = {}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = await self._client.request(
                method,
                f"{self._base}{path}",
                json=body.wire() if body is not None else None,
                headers=headers,
            )
        except httpx2.HTTPError as exc:
            raise StationApiError(f"{method} {path}: {type(exc).__name__}") from exc
        if ok_missing and response.status_code == 404:
            return response
        if response.status_code >= 400:
            raise StationApiError(
                f"{method} {path}: HTTP {response.status_code}", response.status_code
            )
        return response

    async def register(self, registration: wire.TrainRegistration) -> wire.RegistrationReceipt:
        path = wire.TRAIN_REGISTRATION_PATH.format(uid=registration.uid)
        response = await self._send("PUT", path, registration)
        return wire.RegistrationReceipt.model_validate(response.json())

    async def state(self, uid: str) -> wire.TrainState:
        response = await self._send("GET", wire.TRAIN_STATE_PATH.format(uid=uid), ok_missing=True)
        if response.status_code == 404:
            return wire.TrainState(uid=uid, registered=False)
        return wire.TrainState.model_validate(response.json())

    async def complete(self, uid: str, completion: wire.RunCompletion) -> wire.TrainState | None:
        """Report the run's end; the answer is the Train's state after the gate decided (the
        same as :meth:`state`), or None if the station API answered without one."""
        response = await self._send("PUT", wire.TRAIN_COMPLETION_PATH.format(uid=uid), completion)
        if response.status_code != 200 or not response.content:
            return None
        try:
            return wire.TrainState.model_validate_json(response.content)
        except ValueError:
            return None

    async def deregister(self, uid: str) -> None:
        await self._send("DELETE", wire.TRAIN_REGISTRATION_PATH.format(uid=uid), ok_missing=True)

    async def record(self, event: wire.ProvenanceEvent) -> None:
        await self._send("POST", wire.PROVENANCE_PATH, event)
