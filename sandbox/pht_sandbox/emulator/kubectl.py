"""What real ``kubectl`` needs from the emulated API server, for the station in a box.

``kubectl get`` asks the server to render a ``meta.k8s.io/v1`` **Table** (the printer columns
of our CRDs, as an API server does for ``additionalPrinterColumns``); ``kubectl describe``
lists Events with ``involvedObject.*`` field selectors; ``kubectl apply`` first downloads the
**OpenAPI v3** description to decide how to validate, and with our documents it uses
server-side field validation, which this class performs for our own kinds (schema and CEL rules
from the generated CRDs, as the API server would). Everything else is the base emulator.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any, Final

import aiohttp.web
import attrs
from kmock._internal import rendering

from pht_contract import constants
from pht_contract.crds import all_crds
from pht_contract.objects import Obj
from pht_contract.times import parse_utc, utc_now
from pht_contract.validation import validate_object
from pht_sandbox.emulator.failures import ApiFailure
from pht_sandbox.emulator.patches import json_patch, merge_patch
from pht_sandbox.emulator.resources import TRAINS, ResourceSpec
from pht_sandbox.emulator.server import ClusterEmulator

TABLE_ACCEPT: Final = re.compile(r"as=Table")
_OPENAPI_V3: Final = "/openapi/v3"
#: Set by the requester admission policy; the operator never counts this user's approval.
REQUESTED_BY: Final = f"{constants.API_GROUP}/requested-by"
_INVOLVED: Final = re.compile(r"^involvedObject\.(\w+)(!=|==|=)(.*)$")


def _get_path(obj: Obj, json_path: str) -> Any:
    """Value at a simple ``.a.b.c`` JSONPath (all our printer columns are of that form)."""
    value: Any = obj
    for part in json_path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    then = parse_utc(timestamp)
    if then is None:
        return "<unknown>"
    seconds = max(int((utc_now() - then).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _printer_columns() -> dict[str, list[Obj]]:
    columns: dict[str, list[Obj]] = {}
    for crd in all_crds().values():
        plural = crd["spec"]["names"]["plural"]
        columns[plural] = crd["spec"]["versions"][0].get("additionalPrinterColumns", [])
    return columns


_BUILTIN_COLUMNS: Final[dict[str, list[Obj]]] = {
    "pods": [
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    "jobs": [
        {"name": "Active", "type": "integer", "jsonPath": ".status.active"},
        {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded"},
        {"name": "Failed", "type": "integer", "jsonPath": ".status.failed"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    "events": [
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Reason", "type": "string", "jsonPath": ".reason"},
        {"name": "Object", "type": "string", "jsonPath": ".involvedObject.name"},
        {"name": "Message", "type": "string", "jsonPath": ".message"},
    ],
}
_DEFAULT_COLUMNS: Final = [
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
]


def render_table(spec: ResourceSpec, objects: list[Obj], resource_version: str) -> Obj:
    """A ``meta.k8s.io/v1`` Table of the objects with the resource's printer columns."""
    columns = _printer_columns().get(spec.plural) if spec.group == constants.API_GROUP else None
    if columns is None:
        columns = _BUILTIN_COLUMNS.get(spec.plural, _DEFAULT_COLUMNS)
    definitions = [
        {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
    ] + [
        {
            "name": c["name"],
            "type": "string" if c["type"] == "date" else c["type"],
            "format": "",
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        cells: list[Any] = [obj["metadata"]["name"]]
        for column in columns:
            value = _get_path(obj, column["jsonPath"])
            if column["type"] == "date":
                value = _age(value) if value else "<none>"
            cells.append(
                value if value is not None else "<none>" if column["type"] == "string" else None
            )
        meta = {
            k: v
            for k, v in obj["metadata"].items()
            if k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels")
        }
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def _operation(spec: ResourceSpec, action: str) -> Obj:
    return {
        "operationId": f"{action}{spec.kind}",
        "parameters": [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": spec.group,
            "version": spec.version,
            "kind": spec.kind,
        },
    }


def _schema_name(spec: ResourceSpec) -> str:
    group = ".".join(reversed(spec.group.split("."))) if spec.group else "io.k8s.api.core"
    return f"{group}.{spec.version}.{spec.kind}"


def openapi_document(specs: list[ResourceSpec]) -> Obj:
    """An OpenAPI v3 document for one group-version, enough for kubectl's validation choice."""
    crd_schemas = {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in all_crds().values()
    }
    paths: Obj = {}
    schemas: Obj = {}
    for spec in specs:
        base = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
        scope = "/namespaces/{namespace}" if spec.namespaced else ""
        collection = f"{base}{scope}/{spec.plural}"
        paths[collection] = {"post": _operation(spec, "post"), "get": _operation(spec, "list")}
        paths[collection + "/{name}"] = {
            "get": _operation(spec, "get"),
            "put": _operation(spec, "put"),
            "patch": _operation(spec, "patch"),
            "delete": _operation(spec, "delete"),
        }
        schema = copy.deepcopy(crd_schemas.get(spec.kind, {"type": "object"}))
        schema["x-kubernetes-group-version-kind"] = [
            {"group": spec.group, "version": spec.version, "kind": spec.kind}
        ]
        schemas[_schema_name(spec)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (emulated, station in a box)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


@attrs.define(kw_only=True)
class KubectlCluster(ClusterEmulator):
    """The emulated cluster plus Table rendering, OpenAPI v3 and server-side validation.

    It also plays the chart's requester admission policy for Trains: the emulator has no
    authentication, so every request counts as :attr:`user`. A new Train gets the
    ``requested-by`` annotation set to that user (a real cluster's policy requires the
    researcher to set it to their own username), a different value is refused, and an update
    may not change it. The operator never counts an approval by the requester it names.
    """

    #: Who every request is, for lack of authentication (the demo's researcher).
    user: str = "researcher@station.local"

    def _group_versions(self) -> dict[str, list[ResourceSpec]]:
        found: dict[str, list[ResourceSpec]] = {}
        for spec in self._specs.values():
            key = f"apis/{spec.group}/{spec.version}" if spec.group else f"api/{spec.version}"
            found.setdefault(key, []).append(spec)
        return found

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path = raw_request.path.rstrip("/")
        if path == _OPENAPI_V3:
            index = {
                "paths": {
                    key: {
                        "serverRelativeURL": f"{_OPENAPI_V3}/{key}?hash="
                        + hashlib.sha256(key.encode()).hexdigest()[:16].upper()
                    }
                    for key in sorted(self._group_versions())
                }
            }
            return aiohttp.web.json_response(index)
        if path.startswith(_OPENAPI_V3 + "/"):
            specs = self._group_versions().get(path[len(_OPENAPI_V3) + 1 :])
            if specs is None:
                return aiohttp.web.json_response({"message": "not found"}, status=404)
            return aiohttp.web.json_response(openapi_document(specs))
        return await super().__call__(raw_request)

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        # Subresources carry no short names or categories in a real discovery document;
        # otherwise ``kubectl get tr`` warns and ``kubectl get pht`` asks for ``*/status``.
        payload = await super()._serve_version(request)
        if isinstance(payload, dict):
            for resource in payload.get("resources", []):
                if isinstance(resource, dict) and "/" in str(resource.get("name", "")):
                    resource.pop("shortNames", None)
                    resource.pop("categories", None)
                    resource["singularName"] = ""
        return payload

    def list_objects(
        self,
        spec: ResourceSpec,
        namespace: str | None = None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        # ``kubectl describe`` selects Events by the object they are about.
        involved: list[tuple[str, str, str]] = []
        rest: list[str] = []
        for part in (fields or "").split(","):
            match = _INVOLVED.match(part.strip())
            if match:
                involved.append((match[1], match[2], match[3]))
            elif part.strip():
                rest.append(part.strip())
        items = super().list_objects(spec, namespace, labels, ",".join(rest) or None)
        for key, op, value in involved:
            items = [
                o
                for o in items
                if (str((o.get("involvedObject") or {}).get(key, "")) == value) != (op == "!=")
            ]
        return items

    async def _serve_object_request(
        self, request: rendering.Request, spec: ResourceSpec, method: str
    ) -> Obj:
        if spec.plural == constants.TRAIN_PLURAL and not request.subresource:
            self._admit_requester(request, method)
        if (
            method in ("POST", "PUT", "PATCH")
            and spec.group == constants.API_GROUP
            and not request.subresource
        ):
            self._validate(spec, request)
        result = await super()._serve_object_request(request, spec, method)
        accept = request.headers.get("Accept", "")
        if method == "GET" and TABLE_ACCEPT.search(accept):
            objects = result.get("items", [result])
            return render_table(spec, objects, str(self.resource_version))
        return result

    def _admit_requester(self, request: rendering.Request, method: str) -> None:
        body = request.data if isinstance(request.data, dict) else None
        meta = body.get("metadata") if body is not None else None
        if body is None or not isinstance(meta, dict) or method not in ("POST", "PUT", "PATCH"):
            return
        annotations = meta.get("annotations")
        given = annotations.get(REQUESTED_BY) if isinstance(annotations, dict) else None
        if method == "POST":
            if given is None:
                meta["annotations"] = {**(annotations or {}), REQUESTED_BY: self.user}
            elif given != self.user:
                raise ApiFailure(
                    422,
                    "Invalid",
                    f"metadata.annotations[{REQUESTED_BY}] must be your username ({self.user})",
                )
            return
        old = self.get_object(TRAINS, request.namespace, request.name or "")
        before = ((old or {}).get("metadata") or {}).get("annotations") or {}
        if isinstance(annotations, dict) and REQUESTED_BY in annotations:
            if annotations[REQUESTED_BY] != before.get(REQUESTED_BY):
                raise ApiFailure(
                    422, "Invalid", f"metadata.annotations[{REQUESTED_BY}] cannot be changed"
                )
        elif method == "PUT" and REQUESTED_BY in before:
            raise ApiFailure(
                422, "Invalid", f"metadata.annotations[{REQUESTED_BY}] cannot be removed"
            )

    @staticmethod
    def _patched(old: Obj | None, patch: Any, patch_type: str) -> Obj | None:
        if old is None:
            return None
        try:
            patched: Obj | None = None
            if "json-patch" in patch_type and isinstance(patch, list):
                patched = json_patch(old, patch)
            elif "merge-patch" in patch_type and isinstance(patch, dict):
                patched = merge_patch(old, patch)
            return patched
        except ApiFailure:
            return None
        return None

    def _validate(self, spec: ResourceSpec, request: rendering.Request) -> None:
        """Schema and CEL of our CRDs (the API server's job); 422 Invalid with each field path."""
        method = request.method.value.upper() if request.method else ""
        old = None
        if method in ("PUT", "PATCH") and request.name:
            old = self.get_object(spec, request.namespace, request.name)
        body = request.data
        if method == "PATCH":
            # A patch is judged by the object it produces, as the API server does (CEL
            # transition rules included); an unreadable patch is refused by the server itself.
            body = self._patched(old, body, request.headers.get("Content-Type", ""))
        if not isinstance(body, dict):
            return
        body = {**body, "apiVersion": body.get("apiVersion", spec.api_version)}
        # Ratcheting, as the API server does for CRDs: a problem the stored object already had
        # does not block an update that leaves it as it was.
        before = (
            {str(p) for p in validate_object(json.loads(json.dumps(old)))}
            if old is not None
            else set()
        )
        problems = [
            p
            for p in validate_object(json.loads(json.dumps(body)), None, old)
            if not p.path.startswith("status") and str(p) not in before
        ]
        if problems:
            detail = "; ".join(str(p) for p in problems)
            raise ApiFailure(
                422,
                "Invalid",
                f'{spec.kind} "{body.get("metadata", {}).get("name", "")}" is invalid: {detail}',
            )
