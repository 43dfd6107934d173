"""The emulator itself: an object store with the API server's rules, served over HTTP.

:class:`ClusterEmulator` keeps uid, resourceVersion and generation, the ``/status`` subresource,
deletion with finalizers and owner references, and watches that resume from a resourceVersion;
it answers object requests itself and leaves discovery and ``/version`` to kmock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import aiohttp.web
import attrs
import kmock
from kmock._internal import rendering

from pht_contract import constants
from pht_contract.objects import Obj
from pht_contract.times import utc_iso
from pht_sandbox.emulator.failures import REASONS, ApiFailure, gone
from pht_sandbox.emulator.faults import Faults
from pht_sandbox.emulator.patches import json_patch, merge_patch
from pht_sandbox.emulator.resources import EVENTS, NEW_EVENTS, STANDARD_RESOURCES, ResourceSpec
from pht_sandbox.emulator.selectors import field_selector_matches, label_selector_matches

#: What the API server accepts as an object name (RFC 1123 subdomain, lower case).
DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)

WATCH_HISTORY: Final = 20_000
_NAMESPACES_PATH: Final = re.compile(
    r"/api/v1/namespaces(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?/?"
)


@dataclasses.dataclass
class _Watcher:
    spec: ResourceSpec
    namespace: str | None
    labels: str | None
    fields: str | None
    queue: asyncio.Queue[Obj | None] = dataclasses.field(default_factory=asyncio.Queue)


def _labels(obj: Obj) -> dict[str, str]:
    labels = obj.get("metadata", {}).get("labels") or {}
    return dict(labels)


def _body_of(obj: Obj) -> Obj:
    """Everything but metadata and status: what ``generation`` counts changes of."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator):
    """An in-memory Kubernetes API with the semantics an operator relies on.

    Use it in-process (``await cluster.create(JOBS, obj)``) or as an HTTP server on 127.0.0.1
    (``async with cluster.serving() as url``) for a real client such as Kopf or kubectl.
    """

    #: Keep at most this many requests in kmock's request log (None: keep all).
    request_log_limit: int | None = 1000
    faults: Faults = attrs.field(factory=Faults)
    #: Seconds between BOOKMARK events on watches that asked for them.
    bookmark_interval: float = 5.0
    #: Successful writes that came over HTTP, by (method, plural, subresource).
    writes: collections.Counter[tuple[str, str, str]] = attrs.field(factory=collections.Counter)

    _specs: dict[str, ResourceSpec] = attrs.field(factory=dict, init=False)
    _tables: dict[str, dict[tuple[str | None, str], Obj]] = attrs.field(factory=dict, init=False)
    _history: dict[str, collections.deque[tuple[int, Obj]]] = attrs.field(factory=dict, init=False)
    _watchers: list[_Watcher] = attrs.field(factory=list, init=False)
    _revision: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _last_revision: int = attrs.field(default=0, init=False)
    _listeners: list[Callable[[str, ResourceSpec, Obj], None]] = attrs.field(
        factory=list, init=False
    )
    _closing: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for spec in STANDARD_RESOURCES:
            self.register(spec)

    # -- resource registry -------------------------------------------------------------------

    def register(self, spec: ResourceSpec) -> None:
        """Serve a resource type (and list it in API discovery)."""
        self._specs[spec.key] = spec
        self._tables.setdefault(spec.key, {})
        self._history.setdefault(spec.key, collections.deque(maxlen=WATCH_HISTORY))
        self.resources[kmock.resource(spec.group, spec.version, spec.plural)] = kmock.ResourceInfo(
            namespaced=spec.namespaced,
            kind=spec.kind,
            singular=spec.kind.lower(),
            verbs={
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
            },
            shortnames=set(spec.short_names),
            categories=set(spec.categories),
            subresources={"status"} if spec.status_subresource else set(),
        )

    def spec_for(self, group: str, version: str, plural: str) -> ResourceSpec | None:
        return self._specs.get(f"{group}/{version}/{plural}".lstrip("/"))

    def add_listener(self, listener: Callable[[str, ResourceSpec, Obj], None]) -> None:
        """Call ``listener(event_type, spec, object)`` after every change (in-process users)."""
        self._listeners.append(listener)

    # -- in-process API ----------------------------------------------------------------------

    def get_object(self, spec: ResourceSpec, namespace: str | None, name: str) -> Obj | None:
        obj = self._tables[spec.key].get((namespace if spec.namespaced else None, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(
        self,
        spec: ResourceSpec,
        namespace: str | None = None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        return [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(self._tables[spec.key].items(), key=lambda kv: str(kv[0]))
            if (namespace is None or ns == namespace)
            and label_selector_matches(labels, _labels(obj))
            and field_selector_matches(fields, obj)
        ]

    @property
    def resource_version(self) -> int:
        return self._last_revision

    async def create_object(
        self, spec: ResourceSpec, obj: Obj, namespace: str | None = None
    ) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if spec.namespaced:
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise ApiFailure(400, "BadRequest", "the namespace of the object is missing")
            if meta.get("namespace") not in (None, namespace):
                raise ApiFailure(400, "BadRequest", "the namespace does not match the URL")
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiFailure(422, "Invalid", "metadata.name or generateName is required")
            # The API server validates the prefix as a name, a trailing "-" excepted.
            if not DNS_SUBDOMAIN.fullmatch(
                prefix.removesuffix("-") + ("a" if prefix.endswith("-") else "")
            ):
                raise ApiFailure(
                    422, "Invalid", f"metadata.generateName: Invalid value: {prefix!r}"
                )
            meta["name"] = prefix + uuid.uuid4().hex[:5]
        name = meta["name"]
        table = self._tables[spec.key]
        if (namespace, name) in table:
            raise ApiFailure(
                409, "AlreadyExists", f'{spec.plural}.{spec.group} "{name}" already exists'
            )
        obj["apiVersion"] = spec.api_version
        obj["kind"] = spec.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = utc_iso()
        meta["generation"] = 1
        for transient in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(transient, None)
        if spec.status_subresource and spec.group == constants.API_GROUP:
            obj.pop("status", None)  # CRDs with a status subresource ignore status on create
        self._stamp(obj)
        table[(namespace, name)] = obj
        self._emit("ADDED", spec, obj)
        if spec is NEW_EVENTS:
            self._mirror_core_event(obj)
        return copy.deepcopy(obj)

    def _mirror_core_event(self, event: Obj) -> None:
        """An API server keeps one store of Events: an ``events.k8s.io/v1`` Event is also
        listed as a core ``v1`` Event, which is what ``kubectl describe`` shows."""
        meta = event["metadata"]
        core = {
            "apiVersion": EVENTS.api_version,
            "kind": "Event",
            "metadata": copy.deepcopy(meta),
            "involvedObject": copy.deepcopy(event.get("regarding") or {}),
            "reason": event.get("reason"),
            "message": event.get("note"),
            "type": event.get("type"),
            "action": event.get("action"),
            "eventTime": event.get("eventTime"),
            "reportingComponent": event.get("reportingController"),
            "reportingInstance": event.get("reportingInstance"),
            "source": {"component": event.get("reportingController")},
        }
        self._tables[EVENTS.key][(meta["namespace"], meta["name"])] = core
        self._emit("ADDED", EVENTS, core)

    async def patch_object(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        patch_type: str = "application/merge-patch+json",
    ) -> Obj:
        current = self._require(spec, namespace, name)
        if "json-patch" in patch_type:
            if not isinstance(patch, list):
                raise ApiFailure(400, "BadRequest", "a JSON patch is a list of operations")
            updated = json_patch(current, patch)
        else:
            if not isinstance(patch, dict):
                raise ApiFailure(400, "BadRequest", "a merge patch is an object")
            expected = (patch.get("metadata") or {}).get("resourceVersion")
            self._check_version(spec, current, expected)
            updated = merge_patch(current, patch)
        return self._commit(spec, current, updated, subresource)

    async def replace_object(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        current = self._require(spec, namespace, name)
        self._check_version(spec, current, (obj.get("metadata") or {}).get("resourceVersion"))
        updated = copy.deepcopy(obj)
        return self._commit(spec, current, updated, subresource)

    async def delete_object(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
    ) -> Obj:
        current = self._require(spec, namespace, name)
        meta = current["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                updated = copy.deepcopy(current)
                updated["metadata"]["deletionTimestamp"] = utc_iso()
                updated["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._commit(spec, current, updated, None, allow_deleting=True)
            return copy.deepcopy(current)
        self._remove(spec, current, propagation)
        return copy.deepcopy(current)

    # -- internals ---------------------------------------------------------------------------

    def _require(self, spec: ResourceSpec, namespace: str | None, name: str) -> Obj:
        obj = self._tables[spec.key].get((namespace if spec.namespaced else None, name))
        if obj is None:
            raise ApiFailure(404, "NotFound", f'{spec.plural}.{spec.group} "{name}" not found')
        return obj

    @staticmethod
    def _check_version(spec: ResourceSpec, current: Obj, expected: str | None) -> None:
        if expected is not None and str(expected) != current["metadata"]["resourceVersion"]:
            name = current["metadata"]["name"]
            raise ApiFailure(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {spec.plural}.{spec.group} "{name}": the '
                "object has been modified; please apply your changes to the latest version and "
                "try again",
            )

    def _stamp(self, obj: Obj) -> None:
        self._last_revision = next(self._revision)
        obj["metadata"]["resourceVersion"] = str(self._last_revision)

    def _commit(
        self,
        spec: ResourceSpec,
        current: Obj,
        updated: Obj,
        subresource: str | None,
        *,
        allow_deleting: bool = False,
    ) -> Obj:
        if subresource not in (None, "status"):
            raise ApiFailure(404, "NotFound", f"subresource {subresource!r} is not served")
        if subresource == "status" and not spec.status_subresource:
            raise ApiFailure(404, "NotFound", f"{spec.plural} has no status subresource")
        if subresource == "status":
            # The status endpoint changes the status and nothing else.
            result = copy.deepcopy(current)
            if "status" in updated:
                result["status"] = updated["status"]
            else:
                result.pop("status", None)
        else:
            result = updated
            if spec.status_subresource:
                # The main endpoint cannot change the status.
                if "status" in current:
                    result["status"] = copy.deepcopy(current["status"])
                else:
                    result.pop("status", None)
            old_meta, new_meta = current["metadata"], result.setdefault("metadata", {})
            for fixed in ("uid", "creationTimestamp", "name", "namespace", "generation"):
                if fixed in old_meta:
                    new_meta[fixed] = old_meta[fixed]
                else:
                    new_meta.pop(fixed, None)
            if not allow_deleting:
                if "deletionTimestamp" in old_meta:
                    new_meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
                else:
                    new_meta.pop("deletionTimestamp", None)
            if _body_of(result) != _body_of(current):
                new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        result["apiVersion"] = spec.api_version
        result["kind"] = spec.kind
        result["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if result == current:
            return copy.deepcopy(current)  # a no-op write: no new version, no event
        self._stamp(result)
        meta = result["metadata"]
        key = (meta.get("namespace") if spec.namespaced else None, meta["name"])
        self._tables[spec.key][key] = result
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(spec, result, "Background")
        else:
            self._emit("MODIFIED", spec, result)
        return copy.deepcopy(result)

    def _remove(self, spec: ResourceSpec, obj: Obj, propagation: str) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace") if spec.namespaced else None, meta["name"])
        self._tables[spec.key].pop(key, None)
        gone = copy.deepcopy(obj)
        self._stamp(gone)
        self._emit("DELETED", spec, gone)
        if propagation != "Orphan":
            self._collect_dependents(meta["uid"], meta.get("namespace"))

    def _collect_dependents(self, owner_uid: str, namespace: str | None) -> None:
        """Garbage collection: delete what an owner reference ties to a deleted object."""
        for spec in self._specs.values():
            for obj in list(self._tables[spec.key].values()):
                meta = obj["metadata"]
                if meta.get("namespace") != namespace and spec.namespaced:
                    continue
                owners = meta.get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in owners):
                    if meta.get("finalizers"):
                        updated = copy.deepcopy(obj)
                        updated["metadata"]["deletionTimestamp"] = utc_iso()
                        self._commit(spec, obj, updated, None, allow_deleting=True)
                    else:
                        self._remove(spec, obj, "Background")

    def _emit(self, event_type: str, spec: ResourceSpec, obj: Obj) -> None:
        event: Obj = {"type": event_type, "object": copy.deepcopy(obj)}
        self._history[spec.key].append((int(obj["metadata"]["resourceVersion"]), event))
        for watcher in self._watchers:
            if watcher.spec.key == spec.key and self._watch_matches(watcher, obj):
                watcher.queue.put_nowait(event)
        for listener in self._listeners:
            listener(event_type, spec, event["object"])

    @staticmethod
    def _watch_matches(watcher: _Watcher, obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        return (
            (watcher.namespace is None or meta.get("namespace") == watcher.namespace)
            and label_selector_matches(watcher.labels, _labels(obj))
            and field_selector_matches(watcher.fields, obj)
        )

    # -- HTTP --------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock's path parser mistakes ``/api/v1/namespaces[/NAME]`` (cluster-scoped) for a
        # namespaced path and fails; parse those here and handle them like any other object.
        match = _NAMESPACES_PATH.fullmatch(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        body = await raw_request.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        request = rendering.Request(
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            data=data,
            resource=kmock.resource("", "v1", "namespaces"),
            name=match["name"],
            subresource=match["sub"],
            raw_request=raw_request,
        )
        return await self._handle(request)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        try:
            return await self._handle_objects(request)
        finally:
            if self.request_log_limit is not None and len(self._requests) > self.request_log_limit:
                del self._requests[: len(self._requests) - self.request_log_limit]

    async def _handle_objects(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or res.plural is None or res.group is None or res.version is None:
            return await super()._handle(request)  # discovery, /version, DSL reactions
        if (res.group, res.plural) == ("authorization.k8s.io", "selfsubjectaccessreviews"):
            # No authorisation here: every identity may do everything, and says so.
            review = dict(request.data) if isinstance(request.data, dict) else {}
            return _json({**review, "status": {"allowed": True}}, 201)
        spec = self.spec_for(res.group, res.version, res.plural)
        if spec is None:
            return _json(
                ApiFailure(404, "NotFound", "the server could not find the resource").status(), 404
            )
        method = request.method.value.upper() if request.method else "GET"
        watching = method == "GET" and request.params.get("watch") in ("true", "1")
        code = self.faults.take(method, spec.plural, request.subresource, watching)
        if code is not None:
            failure = ApiFailure(code, REASONS.get(code, "InternalError"), "injected fault")
            return _json(failure.status(), code)
        try:
            if watching:
                return await self._serve_watch_stream(request, spec)
            return _json(
                await self._serve_object_request(request, spec, method),
                201 if method == "POST" else 200,
            )
        except ApiFailure as failure:
            return _json(failure.status(), failure.code)

    async def _serve_object_request(
        self, request: rendering.Request, spec: ResourceSpec, method: str
    ) -> Obj:
        namespace = request.namespace if spec.namespaced else None
        name, sub = request.name, request.subresource
        if method == "GET" and name is None:
            items = self.list_objects(
                spec,
                namespace,
                request.params.get("labelSelector"),
                request.params.get("fieldSelector"),
            )
            return {
                "apiVersion": spec.api_version,
                "kind": f"{spec.kind}List",
                "metadata": {"resourceVersion": str(self._last_revision)},
                "items": items,
            }
        if method == "GET":
            assert name is not None
            obj = self.get_object(spec, namespace, name)
            if obj is None:
                raise ApiFailure(404, "NotFound", f'{spec.plural}.{spec.group} "{name}" not found')
            return obj
        if method == "POST" and name is None:
            result = await self.create_object(spec, _require_object(request.data), namespace)
        elif method == "PATCH" and name is not None:
            patch_type = request.headers.get("Content-Type", "application/merge-patch+json")
            result = await self.patch_object(
                spec, namespace, name, request.data, subresource=sub, patch_type=patch_type
            )
        elif method == "PUT" and name is not None:
            result = await self.replace_object(
                spec, namespace, name, _require_object(request.data), subresource=sub
            )
        elif method == "DELETE" and name is not None:
            options = request.data if isinstance(request.data, dict) else {}
            propagation = request.params.get(
                "propagationPolicy", options.get("propagationPolicy", "Background")
            )
            result = await self.delete_object(spec, namespace, name, propagation=propagation)
        else:
            raise ApiFailure(405, "MethodNotAllowed", f"{method} is not supported here")
        self.writes[(method, spec.plural, sub or "")] += 1
        return result

    async def _serve_watch_stream(
        self, request: rendering.Request, spec: ResourceSpec
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        raw_request = request._raw_request
        assert raw_request is not None
        watcher = _Watcher(
            spec,
            request.namespace if spec.namespaced else None,
            params.get("labelSelector"),
            params.get("fieldSelector"),
        )
        if request.name:
            watcher.fields = f"metadata.name={request.name}"
        since = params.get("resourceVersion")
        backlog: list[Obj] = []
        if since in (None, "", "0"):
            backlog = [
                {"type": "ADDED", "object": obj}
                for obj in self.list_objects(
                    spec, watcher.namespace, watcher.labels, watcher.fields
                )
            ]
        else:
            history = self._history[spec.key]
            start = int(since)
            if history and len(history) == history.maxlen and start < history[0][0] - 1:
                backlog = [gone(start)]
            if not backlog:
                backlog = [
                    event
                    for revision, event in history
                    if revision > start and self._watch_matches(watcher, event["object"])
                ]
        timeout = _watch_timeout(params.get("timeoutSeconds"))
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw_request)
        if self._closing:
            await response.write_eof()
            return response
        if self.faults.hang_watches:
            timeout = None  # a wedged stream does not even end at its timeout
        bookmarks = params.get("allowWatchBookmarks") == "true"
        drop = self.faults._drop
        self._watchers.append(watcher)
        try:
            for event in backlog:
                if not self.faults.hang_watches:
                    await response.write(json.dumps(event).encode() + b"\n")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._pump(response, watcher, drop, bookmarks)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._watchers.remove(watcher)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    async def _pump(
        self,
        response: aiohttp.web.StreamResponse,
        watcher: _Watcher,
        drop: asyncio.Event,
        bookmarks: bool,
    ) -> None:
        dropped = asyncio.ensure_future(drop.wait())
        try:
            while True:
                getter = asyncio.ensure_future(watcher.queue.get())
                done, _ = await asyncio.wait(
                    {getter, dropped},
                    timeout=self.bookmark_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if dropped in done:
                    getter.cancel()
                    return
                if getter in done:
                    event = getter.result()
                    if event is None:
                        return
                    if not self.faults.hang_watches:
                        await response.write(json.dumps(event).encode() + b"\n")
                else:
                    getter.cancel()
                    if bookmarks and not self.faults.hang_watches:
                        await response.write(
                            json.dumps(self._bookmark(watcher.spec)).encode() + b"\n"
                        )
        finally:
            dropped.cancel()

    def _bookmark(self, spec: ResourceSpec) -> Obj:
        return {
            "type": "BOOKMARK",
            "object": {
                "apiVersion": spec.api_version,
                "kind": spec.kind,
                "metadata": {"resourceVersion": str(self._last_revision)},
            },
        }

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        # kmock renders the core group as "/v1"; clients (kubectl) expect "v1".
        payload = await super()._serve_version(request)
        if isinstance(payload, dict) and payload.get("groupVersion") == "/v1":
            payload["groupVersion"] = "v1"
        return payload

    # -- serving -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1", port: int | None = None) -> AsyncIterator[str]:
        """Serve over HTTP; yields the base URL (``http://127.0.0.1:PORT``)."""
        async with self, kmock.Server(self, host=host, port=port) as server:
            yield str(server.url).rstrip("/")

    async def close_watches(self) -> None:
        """End every watch stream and answer new ones empty (so servers stop promptly)."""
        self._closing = True
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)


def _require_object(data: Any) -> Obj:
    if not isinstance(data, dict):
        raise ApiFailure(400, "BadRequest", "the request body must be a JSON object")
    return data


def _json(body: Obj, status: int) -> aiohttp.web.Response:
    return aiohttp.web.json_response(body, status=status)


def _watch_timeout(value: str | None) -> float | None:
    """``timeoutSeconds`` as the API server parses it: a whole number ("60.0" is refused)."""
    if not value:
        return None
    try:
        return float(int(value))
    except ValueError:
        raise ApiFailure(
            400, "BadRequest", f'strconv.ParseInt: parsing "{value}": invalid syntax'
        ) from None
