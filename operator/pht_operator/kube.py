"""The operator's one Kubernetes client: JSON dicts in and out, over one HTTP session.

Every read and write the operator makes itself (status patches, finalizers, Secrets, Jobs,
NetworkPolicies, Events, access reviews, the run-object and liveness watches) goes through one
:class:`KubeClient` per process, on an ``aiohttp`` session (:mod:`pht_operator.sessions`).
Objects stay plain JSON dicts as the API server writes them. Writes are explicit: merge patches
carrying the resourceVersion they were computed from, so a stale view is refused with 409
(:attr:`ApiError.conflict`) instead of overwriting.

lightkube supplies what is not HTTP: the kubeconfig (or in-cluster service account), the TLS
settings it implies, the credential (a token, a token file re-read when refused, an exec
plugin run again when refused) and the API paths of resource types.
Kopf logs in on its own (from the same kubeconfig or service account) to run its watches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import httpx2
import msgspec
from lightkube.config.client_adapter import user_auth, verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.resource import NamespacedResource, api_info
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import CascadeType, PatchType

from pht_contract import constants
from pht_contract.objects import Obj
from pht_operator.sessions import Answer, BadAnswer, Session, Unreachable

#: A resource type: a lightkube model class, or a generic resource for our CRDs.
Resource = type[NamespacedResource]

FIELD_MANAGER: Final = "pht-station-operator"
#: Objects per page of a listing.
LIST_PAGE: Final = 500
#: How long computing the credential may take (an exec plugin that hangs must not hold every
#: call behind it).
CREDENTIAL_TIMEOUT_SECONDS = 30.0
#: Pages of one listing at most (a listing that goes on beyond is refused, as one whose
#: ``continue`` token repeats: an API server's loop, not objects).
MAX_LIST_PAGES = 1000
#: The longest watch event read (the API server stores objects of at most a few MiB).
MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024
#: A watch the API server was asked to end after ``timeoutSeconds`` is ended by the operator
#: this much later, however much the server still trickles.
WATCH_GRACE_SECONDS = 60.0

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


def load_config(kubeconfig: Path | None = None) -> KubeConfig:
    """Kubeconfig file (explicit, ``$KUBECONFIG`` or ``~/.kube/config``) or in-cluster."""
    if kubeconfig is not None:
        return KubeConfig.from_file(kubeconfig)
    return KubeConfig.from_env()


def _label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


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


def _refusal(answer: Answer) -> ApiError:
    """A non-2xx answer as :class:`ApiError`, with the API server's Status where it sent one."""
    code, reason, message = answer.status, answer.reason or "Error", ""
    if answer.content_type == "application/json":
        try:
            status = msgspec.json.decode(answer.body)
        except msgspec.DecodeError:
            status = None
        if isinstance(status, dict):
            code = int(status.get("code") or code)
            reason = str(status.get("reason") or "Error")
            message = str(status.get("message") or "")[:200]
    return ApiError(code, reason, message)


def _bad_gateway(what: str) -> ApiError:
    return ApiError(502, "BadGateway", what)


def _object(answer: Answer) -> Obj:
    """The object a call answered, or :class:`ApiError` when it was refused."""
    if not answer.ok:
        raise _refusal(answer)
    if not answer.body:
        return {}
    try:
        decoded = msgspec.json.decode(answer.body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _bad_gateway("the answer was not JSON") from exc
    return decoded if isinstance(decoded, dict) else {}


def _unreachable(exc: Unreachable) -> ApiError:
    if isinstance(exc, BadAnswer):
        return _bad_gateway(str(exc))
    return ApiError(503, "Unavailable", str(exc))


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

Fields = TypeVar("Fields", bound=msgspec.Struct)


class WatchEvent(msgspec.Struct, Generic[Fields]):
    """A watch event whose object is read as ``Fields`` (a struct naming only the fields its
    reader needs: the rest of each object is skipped by the decoder, not built)."""

    type: str = ""
    object: Fields | None = None


_typed_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {}


def _event_decoder(fields: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    found = _typed_decoders.get(fields)
    if found is None:
        found = _typed_decoders[fields] = msgspec.json.Decoder(WatchEvent[fields])  # type: ignore[valid-type]
    return found


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The non-empty lines of a streamed answer (a watch: one JSON event a line); a line
    longer than :data:`MAX_WATCH_LINE_BYTES` is an :class:`ApiError` (502)."""
    limit = MAX_WATCH_LINE_BYTES
    rest = bytearray()
    async for chunk in chunks:
        if b"\n" not in chunk:
            # Part of a line: appended in place (a long event in many pieces stays linear).
            rest += chunk
            if len(rest) > limit:
                raise _bad_gateway("a watch event exceeded the size limit")
            continue
        lines = chunk.split(b"\n")
        if rest:
            lines[0] = bytes(rest) + lines[0]
        rest = bytearray(lines.pop())
        for line in lines:
            if len(line) > limit:
                raise _bad_gateway("a watch event exceeded the size limit")
            if line.strip():
                yield line
        if len(rest) > limit:
            raise _bad_gateway("a watch event exceeded the size limit")
    if rest.strip():
        yield bytes(rest)


class Credentials:
    """The ``Authorization`` header of the kubeconfig's user, as lightkube's authentication
    computes it (a token; a token file, re-read when the API server refuses it; an exec
    plugin, run again when refused; basic). Client certificates live in the TLS settings."""

    def __init__(self, auth: httpx2.Auth | None) -> None:
        self._auth = auth
        self._header: str | None = None
        self._ready = auth is None
        self._lock = asyncio.Lock()

    async def header(self) -> str | None:
        if not self._ready:
            async with self._lock:
                if not self._ready:
                    self._header = await self._compute(refused=None)
                    self._ready = True
        return self._header

    async def refused(self, header: str | None) -> bool:
        """The API server answered 401 to ``header``: compute it again. Whether it changed
        (only then is a call worth repeating)."""
        if self._auth is None:
            return False
        async with self._lock:
            if self._header != header:  # another call already renewed it
                return True
            renewed = await self._compute(refused=header)
            changed = renewed != self._header
            self._header = renewed
            return changed

    async def _compute(self, refused: str | None) -> str | None:
        """The header from lightkube's flow, within :data:`CREDENTIAL_TIMEOUT_SECONDS`. A
        failure is an :class:`ApiError` naming only its kind: a plugin's own error output
        (which may quote what it read) stays out of the operator's log."""
        try:
            async with asyncio.timeout(CREDENTIAL_TIMEOUT_SECONDS):
                return await self._flow(refused)
        except Exception as exc:
            raise ApiError(
                503,
                "CredentialUnavailable",
                f"the kubeconfig's credential could not be obtained ({type(exc).__name__})",
            ) from None

    async def _flow(self, refused: str | None) -> str | None:
        assert self._auth is not None
        request = httpx2.Request("GET", "https://kubernetes.invalid/")
        if refused is not None:
            request.headers["Authorization"] = refused
        flow = self._auth.async_auth_flow(request)
        try:
            sent = await flow.__anext__()
            if refused is not None:
                # Tell the flow its header was refused; a static one has nothing more to say.
                with contextlib.suppress(StopAsyncIteration):
                    sent = await flow.asend(httpx2.Response(401, request=sent))
        finally:
            await flow.aclose()
        return sent.headers.get("Authorization")


class KubeClient:
    """JSON-in, JSON-out calls to the Kubernetes API."""

    def __init__(self, session: Session, credentials: Credentials) -> None:
        self._session = session
        self._credentials = credentials

    @classmethod
    def from_config(cls, config: KubeConfig, timeout: float = 15.0) -> KubeClient:
        single = config.get()
        if single is None:
            raise RuntimeError("the kubeconfig has no current context")
        if single.user is None:
            raise RuntimeError("the kubeconfig's current context has no user")
        server = single.cluster.server
        tls = (
            verify_cluster(single.cluster, single.user, single.abs_file, trust_env=False)
            if server.startswith("https:")
            else None
        )
        return cls(Session(server, tls, timeout), Credentials(user_auth(single.user)))

    async def aclose(self) -> None:
        await self._session.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Obj | None = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Answer:
        """One call with the user's credential; once more if the API server refused the
        credential and it has changed since (a rotated token)."""
        content = None if body is None else msgspec.json.encode(body)
        for _ in range(2):
            header = await self._credentials.header()
            headers = {"Accept": "application/json"}
            if content is not None:
                headers["Content-Type"] = content_type
            if header is not None:
                headers["Authorization"] = header
            try:
                answer = await self._session.request(
                    method, path, body=content, headers=headers, params=params
                )
            except Unreachable as exc:
                raise _unreachable(exc) from exc
            if answer.status != 401 or not await self._credentials.refused(header):
                return answer
        return answer

    def _path(self, res: Resource, namespace: str, name: str | None = None) -> str:
        prefix, plural = _collection(res)
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return path if name is None else f"{path}/{name}"

    async def get(self, res: Resource, namespace: str, name: str) -> Obj:
        return _object(await self._call("GET", self._path(res, namespace, name)))

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
        """Every object (matching ``labels``), and the listing's resourceVersion; read in
        pages of :data:`LIST_PAGE` objects, :data:`MAX_LIST_PAGES` at most (a listing that
        goes on, or repeats a page, is an :class:`ApiError`, 502)."""
        params = {"limit": str(LIST_PAGE)}
        if labels:
            params["labelSelector"] = _label_selector(labels)
        items: list[Obj] = []
        seen: set[str] = set()
        for _ in range(MAX_LIST_PAGES):
            page = _object(await self._call("GET", self._path(res, namespace), params=params))
            found = page.get("items") or []
            meta = page.get("metadata") or {}
            if not isinstance(found, list) or not isinstance(meta, dict):
                raise _bad_gateway("the listing was malformed")
            items.extend(item for item in found if isinstance(item, dict))
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")
            if not isinstance(token, str) or token in seen:
                raise _bad_gateway("the listing repeated a page")
            seen.add(token)
            params["continue"] = token
        raise _bad_gateway("the listing did not end")

    async def create(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        kind = api_info(res).resource
        placed = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            **obj,
            "metadata": {**obj["metadata"], "namespace": namespace},
        }
        params = {"fieldManager": FIELD_MANAGER}
        return _object(
            await self._call("POST", self._path(res, namespace), body=placed, params=params)
        )

    async def merge_patch(
        self, res: Resource, namespace: str, name: str, patch: Obj, *, status: bool = False
    ) -> Obj:
        """A JSON merge patch (of the ``/status`` subresource when ``status``)."""
        path = self._path(res, namespace, name)
        if status:
            path += "/status"
        answer = await self._call(
            "PATCH",
            path,
            body=patch,
            content_type=PatchType.MERGE.value,
            params={"fieldManager": FIELD_MANAGER},
        )
        return _object(answer)

    async def delete(self, res: Resource, namespace: str, name: str) -> bool:
        """Delete with background propagation (a Job's pods stop); ``False`` if already gone."""
        answer = await self._call(
            "DELETE",
            self._path(res, namespace, name),
            params={"propagationPolicy": CascadeType.BACKGROUND.value},
        )
        if answer.status == 404:
            return False
        _object(answer)
        return True

    async def allowed(self, attributes: dict[str, str]) -> bool:
        """Whether the operator's own identity may do this (a SelfSubjectAccessReview)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        answer = _object(await self._call("POST", path, body=review))
        status = answer.get("status")
        return isinstance(status, dict) and status.get("allowed") is True

    async def _stream(
        self, path: str, params: dict[str, str], server_timeout: int
    ) -> AsyncIterator[bytes]:
        """The lines of one watch, until the server ends it; a refusal raises
        :class:`ApiError`."""
        header = await self._credentials.header()
        headers = {"Accept": "application/json"}
        if header is not None:
            headers["Authorization"] = header
        try:
            async with self._session.stream(
                path,
                params=params,
                headers=headers,
                read_timeout=server_timeout + 10,
                deadline=server_timeout + WATCH_GRACE_SECONDS,
            ) as (head, chunks):
                if not head.ok:
                    if head.status == 401:
                        await self._credentials.refused(header)
                    raise _refusal(head)
                async for line in _lines(chunks):
                    yield line
        except Unreachable as exc:
            raise _unreachable(exc) from exc

    async def watch(
        self,
        res: Resource,
        namespace: str,
        *,
        labels: dict[str, str] | None,
        resource_version: str | None,
        server_timeout: int,
        fields: type[msgspec.Struct] | None = None,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """``(type, object)`` events from ``resource_version`` on, until cancelled; a watch the
        server ends at its timeout is resumed, any failure raises :class:`ApiError` (an
        ``ERROR`` event too: 410 when the version is too old to resume from).

        ``fields``: read each object as this struct (its fields only, as a dict without the
        fields an object lacks); it must name ``metadata`` and, for ``ERROR`` events, the
        Status fields ``code``, ``reason`` and ``message``."""
        params = {"watch": "true", "timeoutSeconds": str(server_timeout)}
        if labels:
            params["labelSelector"] = _label_selector(labels)
        decoder = None if fields is None else _event_decoder(fields)
        version = resource_version or None
        path = self._path(res, namespace)
        while True:
            if version:
                params["resourceVersion"] = version
            async for line in self._stream(path, params, server_timeout):
                if decoder is None:
                    event = msgspec.json.decode(line)
                    kind, obj = str(event.get("type") or ""), event.get("object")
                else:
                    typed = decoder.decode(line)
                    kind = typed.type
                    obj = None if typed.object is None else msgspec.to_builtins(typed.object)
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
            params["labelSelector"] = _label_selector(labels)
        if resource_version:
            params["resourceVersion"] = resource_version
        path = (
            f"/apis/{constants.API_GROUP}/{constants.API_VERSION}/namespaces/{namespace}/"
            f"{constants.TRAIN_PLURAL}"
        )
        async for line in self._stream(path, params, server_timeout):
            beat = _HEARTBEAT.decode(line)
            yield beat.type, beat.version
        yield "END", ""
