"""A small async Kubernetes client for the operator's own reads and writes.

Kopf watches and posts Events; everything the operator *does* (status patches, Secrets, Jobs,
finalizers) goes through this client so each write is explicit, JSON in and out, and counted.
Authentication and TLS come from lightkube's kubeconfig / in-cluster loader (the same sources
Kopf logs in with), so the two always talk to the same cluster as the same identity; the HTTP
client is the one lightkube builds (``httpx2``), with its auth plugins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2
from lightkube.config.client_adapter import AsyncClient, ConnectionParams
from lightkube.config.kubeconfig import KubeConfig

from pht_contract import constants

Obj = dict[str, Any]

MERGE_PATCH: Final = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """Where a resource type lives in the API."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if sub is not None:
            base += f"/{sub}"
        return base


TRAINS: Final = Resource(constants.API_GROUP, constants.API_VERSION, constants.TRAIN_PLURAL)
POLICIES: Final = Resource(constants.API_GROUP, constants.API_VERSION, constants.POLICY_PLURAL)
APPROVALS: Final = Resource(constants.API_GROUP, constants.API_VERSION, constants.APPROVAL_PLURAL)
JOBS: Final = Resource("batch", "v1", "jobs")
PODS: Final = Resource("", "v1", "pods")
SECRETS: Final = Resource("", "v1", "secrets")
NETWORK_POLICIES: Final = Resource("networking.k8s.io", "v1", "networkpolicies")


class ApiError(Exception):
    """A non-2xx answer from the Kubernetes API."""

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


class KubeApi:
    """JSON-in, JSON-out calls to the Kubernetes API."""

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self._client = client

    @classmethod
    def from_config(cls, config: KubeConfig, timeout: float = 15.0) -> KubeApi:
        single = config.get()
        if single is None:
            raise RuntimeError("the kubeconfig has no current context")
        params = ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False)
        client = AsyncClient(single, params)
        return cls(client)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        try:
            response = await self._client.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx2.TransportError as exc:
            raise ApiError(503, "Unavailable", f"{type(exc).__name__} on {method} {path}") from exc
        if response.status_code >= 400:
            try:
                status = response.json()
            except ValueError:
                status = {}
            raise ApiError(
                response.status_code,
                str(status.get("reason", "Error")),
                str(status.get("message", response.text[:200])),
            )
        result = response.json()
        return result if isinstance(result, dict) else {}

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return await self._call("GET", res.path(namespace, name))

    async def get_or_none(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.get(res, namespace, name)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self, res: Resource, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[Obj]:
        params = {}
        if labels:
            params["labelSelector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        result = await self._call("GET", res.path(namespace), params=params)
        items = result.get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def create(self, res: Resource, namespace: str | None, obj: Obj) -> Obj:
        return await self._call("POST", res.path(namespace), body=obj)

    async def patch(
        self, res: Resource, namespace: str | None, name: str, patch: Obj, sub: str | None = None
    ) -> Obj:
        return await self._call(
            "PATCH", res.path(namespace, name, sub), body=patch, content_type=MERGE_PATCH
        )

    async def delete(
        self, res: Resource, namespace: str | None, name: str, propagation: str = "Background"
    ) -> bool:
        """Delete; ``False`` when it was already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self._call("DELETE", res.path(namespace, name), body=body)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True
