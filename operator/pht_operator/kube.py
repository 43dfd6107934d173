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

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import httpx2
import lightkube
import msgspec
from lightkube.config.client_adapter import AsyncClient as build_http_client
from lightkube.config.client_adapter import ConnectionParams, verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import NotReadyError
from lightkube.core.resource import NamespacedResource, api_info
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.types import CascadeType, PatchType

from pht_contract import constants
from pht_contract.objects import Obj
from pht_operator.transport import http_transport

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


_collections: dict[Resource, tuple[str, str]] = {}


def _collection(res: Resource) -> tuple[str, str]:
    """The API path of a resource type up to the namespace, and its plural:
    ``("/apis/batch/v1", "jobs")``; ``("/api/v1", "secrets")`` for the core group."""
    found = _collections.get(res)
    if found is None:
        info = api_info(res)
        group, version = info.resource.group, info.resource.version
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        found = _collections[res] = (prefix, info.plural)
    return found


def _answer(response: httpx2.Response) -> Obj:
    """The object a write answered, or :class:`ApiError` with the API server's Status."""
    if response.is_success:
        decoded = msgspec.json.decode(response.content) if response.content else {}
        return decoded if isinstance(decoded, dict) else {}
    code, reason, message = response.status_code, response.reason_phrase or "Error", ""
    if response.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            status = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            status = None
        if isinstance(status, dict):
            code = int(status.get("code") or code)
            reason = str(status.get("reason") or "Error")
            message = str(status.get("message") or "")[:200]
    raise ApiError(code, reason, message)


class _BeatMeta(msgspec.Struct):
    resourceVersion: str = ""


class _BeatObject(msgspec.Struct):
    metadata: _BeatMeta = msgspec.field(default_factory=_BeatMeta)


class _Beat(msgspec.Struct):
    """What the liveness watch reads of an event: its type and the object's version (the
    rest of each Train is skipped by the decoder, not built)."""

    type: str = ""
    object: _BeatObject | None = None

    @property
    def version(self) -> str:
        return "" if self.object is None else self.object.metadata.resourceVersion


_HEARTBEAT: Final = msgspec.json.Decoder(_Beat)


async def _lines(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The non-empty lines of a streamed answer (a watch: one JSON event a line)."""
    rest = b""
    async for chunk in response.aiter_bytes():
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.strip():
                yield line
    if rest.strip():
        yield rest


class KubeClient:
    """JSON-in, JSON-out calls to the Kubernetes API through one lightkube ``AsyncClient``."""

    def __init__(self, client: lightkube.AsyncClient, http: httpx2.AsyncClient) -> None:
        self._client = client
        self._http = http
        # Writes (create, merge patch, delete: most of the operator's requests) go straight to
        # ``http``, on absolute URLs: lightkube's typed request building and httpx's joining of
        # relative URLs cost as much CPU as the request itself. Same requests on the wire.
        self._base = str(http.base_url).rstrip("/")

    @classmethod
    def from_config(cls, config: KubeConfig, timeout: float = 15.0) -> KubeClient:
        single = config.get()
        if single is None:
            raise RuntimeError("the kubeconfig has no current context")
        if single.user is None:
            raise RuntimeError("the kubeconfig's current context has no user")
        # The same TLS settings lightkube would use (cluster CA, client certificate), on a
        # transport that sends each request in one write (see pht_operator.transport).
        # One transport, so one pool of connections, for lightkube's calls and the direct ones.
        verify = verify_cluster(single.cluster, single.user, single.abs_file, trust_env=False)
        transport = http_transport(verify)
        client = lightkube.AsyncClient(
            single,
            timeout=httpx2.Timeout(timeout),
            trust_env=False,
            field_manager=FIELD_MANAGER,
            transport=transport,
        )
        # lightkube annotates the field with the synchronous transport type; its async client
        # factory passes it on to ``httpx2.AsyncClient``, which takes this one.
        params = ConnectionParams(
            timeout=httpx2.Timeout(timeout),
            trust_env=False,
            transport=transport,  # type: ignore[arg-type]
        )
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

    def _url(self, res: Resource, namespace: str, name: str | None = None) -> str:
        prefix, plural = _collection(res)
        url = f"{self._base}{prefix}/namespaces/{namespace}/{plural}"
        return url if name is None else f"{url}/{name}"

    async def _write(
        self, method: str, url: str, body: Obj, content_type: str = "application/json"
    ) -> Obj:
        try:
            response = await self._http.request(
                method,
                url,
                content=msgspec.json.encode(body),
                headers={"Content-Type": content_type},
            )
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc
        return _answer(response)

    async def create(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        kind = api_info(res).resource
        placed = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            **obj,
            "metadata": {**obj["metadata"], "namespace": namespace},
        }
        url = f"{self._url(res, namespace)}?fieldManager={FIELD_MANAGER}"
        return await self._write("POST", url, placed)

    async def merge_patch(
        self, res: Resource, namespace: str, name: str, patch: Obj, *, status: bool = False
    ) -> Obj:
        """A JSON merge patch (of the ``/status`` subresource when ``status``)."""
        url = self._url(res, namespace, name)
        if status:
            url += "/status"
        url += f"?fieldManager={FIELD_MANAGER}"
        return await self._write("PATCH", url, patch, PatchType.MERGE.value)

    async def delete(self, res: Resource, namespace: str, name: str) -> bool:
        """Delete with background propagation (a Job's pods stop); ``False`` if already gone."""
        url = f"{self._url(res, namespace, name)}?propagationPolicy={CascadeType.BACKGROUND.value}"
        try:
            response = await self._http.request("DELETE", url)
        except httpx2.HTTPError as exc:
            raise _api_error(exc) from exc
        try:
            _answer(response)
        except ApiError as error:
            if error.not_found:
                return False
            raise
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
        server ends at its timeout is resumed, any failure raises :class:`ApiError` (an
        ``ERROR`` event too: 410 when the version is too old to resume from)."""
        params = {"watch": "true", "timeoutSeconds": str(server_timeout)}
        if labels:
            params["labelSelector"] = ",".join(f"{key}={value}" for key, value in labels.items())
        version = resource_version or None
        url = self._url(res, namespace)
        while True:
            if version:
                params["resourceVersion"] = version
            try:
                async with self._http.stream(
                    "GET", url, params=params, timeout=server_timeout + 10
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        _answer(response)
                    async for line in _lines(response):
                        event = msgspec.json.decode(line)
                        kind = str(event.get("type") or "")
                        obj = event.get("object")
                        if not isinstance(obj, dict):
                            continue
                        if kind == "ERROR":
                            raise ApiError(
                                int(obj.get("code") or 500),
                                str(obj.get("reason") or "Error"),
                                str(obj.get("message") or "")[:200],
                            )
                        version = (obj.get("metadata") or {}).get("resourceVersion") or version
                        yield kind, obj
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
        self,
        namespace: str,
        resource_version: str | None,
        server_timeout: int,
        labels: dict[str, str] | None = None,
    ) -> AsyncIterator[tuple[str, str]]:
        """One watch of Trains (those with ``labels``) with bookmarks: ``(type,
        resourceVersion)`` of every event received, then ``("END", "")`` when the server
        closes the watch at its timeout."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(server_timeout),
        }
        if labels:
            params["labelSelector"] = ",".join(f"{key}={value}" for key, value in labels.items())
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
                async for line in _lines(response):
                    beat = _HEARTBEAT.decode(line)
                    yield beat.type, beat.version
        except httpx2.TransportError as exc:
            raise _api_error(exc) from exc
        yield "END", ""
