"""The operator's one Kubernetes client: lightkube's ``AsyncClient``, JSON dicts in and out.

Every read and write the operator makes itself (status patches, finalizers, Secrets, Jobs,
NetworkPolicies, Events, access reviews, the run-object watches) goes through one
:class:`KubeClient` per process. Inside the operator objects stay plain
JSON dicts (as the API server writes them); the typed lightkube models are used only at this
boundary. Writes are explicit: merge patches carrying the resourceVersion they were computed
from, so a stale view is refused with 409 (:attr:`ApiError.conflict`) instead of overwriting.

Kopf logs in on its own (from the same kubeconfig or service account) to run its watches.
The liveness probe needs watch bookmarks, which lightkube's watch does not ask for, so
:meth:`KubeClient.watch_heartbeats` streams that one watch over an HTTP client built from the
same configuration (same cluster, same identity, same TLS).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final, cast

import httpx2
import lightkube
from lightkube.config.client_adapter import AsyncClient as build_http_client
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import NotReadyError
from lightkube.core.resource import NamespacedResource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.types import CascadeType, PatchType

from pht_contract import constants
from pht_contract.objects import Obj

#: A resource type: a lightkube model class, or a generic resource for our CRDs.
Resource = type[NamespacedResource]

FIELD_MANAGER: Final = "pht-station-operator"

TRAINS: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, "Train", constants.TRAIN_PLURAL
)
POLICIES: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, "StationPolicy", constants.POLICY_PLURAL
)
APPROVALS: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, "TrainApproval", constants.APPROVAL_PLURAL
)
# The built-in kinds as generic resources too: lightkube's typed models would turn every
# object read, written or watched into nested dataclasses and back into a dict (on a real
# cluster a good share of the operator's CPU for each Job and pod update); the operator
# works on plain dicts and the API server validates what it is sent.
JOBS: Final = create_namespaced_resource("batch", "v1", "Job", "jobs")
PODS: Final = create_namespaced_resource("", "v1", "Pod", "pods")
SECRETS: Final = create_namespaced_resource("", "v1", "Secret", "secrets")
NETWORK_POLICIES: Final = create_namespaced_resource(
    "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"
)
EVENTS: Final = create_namespaced_resource("events.k8s.io", "v1", "Event", "events")


class ApiError(Exception):
    """A non-2xx answer from the Kubernetes API (503 when it could not be reached)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409


def _api_error(exc: httpx2.HTTPError) -> ApiError:
    """lightkube's error (or a failed connection) as the operator handles it."""
    if isinstance(exc, lightkube.ApiError):
        status = exc.status
        return ApiError(
            int(status.code or exc.response.status_code),
            str(status.reason or "Error"),
            str(status.message or "")[:200],
        )
    if isinstance(exc, httpx2.HTTPStatusError):
        return ApiError(exc.response.status_code, exc.response.reason_phrase, "")
    return ApiError(503, "Unavailable", type(exc).__name__)


def load_config(kubeconfig: Path | None = None) -> KubeConfig:
    """Kubeconfig file (explicit, ``$KUBECONFIG`` or ``~/.kube/config``) or in-cluster."""
    if kubeconfig is not None:
        return KubeConfig.from_file(kubeconfig)
    return KubeConfig.from_env()


def _selector(labels: dict[str, str] | None) -> dict[str, Any] | None:
    return dict(labels) if labels else None


def _to_dict(obj: Any) -> Obj:
    result = obj.to_dict()
    return result if isinstance(result, dict) else {}


class KubeClient:
    """JSON-in, JSON-out calls to the Kubernetes API through one lightkube ``AsyncClient``."""

    def __init__(self, client: lightkube.AsyncClient, http: httpx2.AsyncClient) -> None:
        self._client = client
        self._http = http

    @classmethod
    def from_config(cls, config: KubeConfig, timeout: float = 15.0) -> KubeClient:
        single = config.get()
        if single is None:
            raise RuntimeError("the kubeconfig has no current context")
        client = lightkube.AsyncClient(
            single, timeout=httpx2.Timeout(timeout), trust_env=False, field_manager=FIELD_MANAGER
        )
        params = ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False)
        http = build_http_client(single, params)
        return cls(client, http)

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()

    async def get(self, res: Resource, namespace: str, name: str) -> Obj:
        try:
            return _to_dict(await self._client.get(res, name, namespace=namespace))
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc

    async def get_or_none(self, res: Resource, namespace: str, name: str) -> Obj | None:
        try:
            return await self.get(res, namespace, name)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self, res: Resource, namespace: str, labels: dict[str, str] | None = None
    ) -> tuple[list[Obj], str]:
        """Every object (matching ``labels``), and the listing's resourceVersion."""
        listing = self._client.list(res, namespace=namespace, labels=_selector(labels))
        try:
            items = [_to_dict(item) async for item in listing]
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc
        try:
            version = listing.resourceVersion
        except NotReadyError:
            version = ""
        return items, str(version or "")

    async def create(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        try:
            placed = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
            model: Any = cast(Any, res).from_dict(placed)
            created = await self._client.create(model)
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc
        return _to_dict(created)

    async def merge_patch(
        self, res: Resource, namespace: str, name: str, patch: Obj, *, status: bool = False
    ) -> Obj:
        """A JSON merge patch (of the ``/status`` subresource when ``status``)."""
        target: Any = res.Status if status else res  # type: ignore[attr-defined]
        try:
            updated = await self._client.patch(
                target, name, patch, namespace=namespace, patch_type=PatchType.MERGE
            )
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc
        return _to_dict(updated)

    async def delete(self, res: Resource, namespace: str, name: str) -> bool:
        """Delete with background propagation (a Job's pods stop); ``False`` if already gone."""
        try:
            await self._client.delete(
                res, name, namespace=namespace, cascade=CascadeType.BACKGROUND
            )
        except httpx2.HTTPError as exc:
            error = _api_error(exc)
            if error.not_found:
                return False
            raise error from exc
        return True

    async def watch(
        self,
        res: Resource,
        namespace: str,
        *,
        labels: dict[str, str] | None,
        resource_version: str | None,
        server_timeout: int,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """``(type, object)`` events from ``resource_version`` on, until cancelled; a watch the
        server ends at its timeout is resumed, any failure raises :class:`ApiError`."""
        events = self._client.watch(
            res,
            namespace=namespace,
            labels=_selector(labels),
            resource_version=resource_version or None,
            server_timeout=server_timeout,
        )
        try:
            async for kind, obj in events:
                yield kind, _to_dict(obj)
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc

    async def allowed(self, attributes: dict[str, str]) -> bool:
        """Whether the operator's own identity may do this (a SelfSubjectAccessReview)."""
        review: Any = SelfSubjectAccessReview.from_dict(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            }
        )
        try:
            answer = await self._client.create(review)
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc
        return bool(answer.status is not None and answer.status.allowed)

    async def watch_heartbeats(
        self, namespace: str, resource_version: str | None, server_timeout: int
    ) -> AsyncIterator[tuple[str, str]]:
        """One watch of Trains with bookmarks: ``(type, resourceVersion)`` of every event
        received, then ``("END", "")`` when the server closes the watch at its timeout."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(server_timeout),
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        path = (
            f"/apis/{constants.API_GROUP}/{constants.API_VERSION}/namespaces/{namespace}/"
            f"{constants.TRAIN_PLURAL}"
        )
        try:
            async with self._http.stream(
                "GET", path, params=params, timeout=server_timeout + 10
            ) as response:
                if response.status_code >= 400:
                    raise ApiError(response.status_code, "Error", "watch refused")
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    meta = (event.get("object") or {}).get("metadata") or {}
                    yield str(event.get("type") or ""), str(meta.get("resourceVersion") or "")
        except httpx2.TransportError as exc:
            raise _api_error(exc) from exc
        yield "END", ""
