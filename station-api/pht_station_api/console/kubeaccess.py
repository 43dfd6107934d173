"""The Kubernetes API as the signed-in steward: their bearer token, the station API's cluster.

The cluster (server address, CA) comes from the station API's own configuration
(:func:`~pht_station_api.kubernetes_identities.kube_config`); the credential is replaced by the
steward's token, so the API server authorises every read and write as the steward — and the
chart's admission policy can check that a TrainApproval's approver is who created it.
Errors become :class:`KubeRefused` with a one-line message (the API server's own words).
"""

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import httpx2
from lightkube import AsyncClient
from lightkube.config.models import User
from lightkube.core.exceptions import ConfigError
from lightkube.generic_resource import create_namespaced_resource

from pht_contract import constants
from pht_contract.objects import Obj
from pht_station_api.kubernetes_identities import kube_config
from pht_station_api.settings import Settings

T = TypeVar("T")
TIMEOUT_SECONDS: Final = 10.0
FIELD_MANAGER: Final = "pht-station-console"

TRAINS: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, constants.TRAIN_KIND, constants.TRAIN_PLURAL
)
POLICIES: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, constants.POLICY_KIND, constants.POLICY_PLURAL
)
APPROVALS: Final = create_namespaced_resource(
    constants.API_GROUP, constants.API_VERSION, constants.APPROVAL_KIND, constants.APPROVAL_PLURAL
)


class KubeRefused(Exception):
    """The Kubernetes API refused or could not be reached; ``status`` is its HTTP status (0:
    not reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _plain(obj: Any) -> Obj:
    """A lightkube generic object as a plain dict."""
    return dict(obj.to_dict())


def _message(error: httpx2.HTTPStatusError) -> str:
    try:
        body = error.response.json()
    except ValueError:
        body = {}
    text = body.get("message") if isinstance(body, dict) else None
    return str(text or f"the Kubernetes API answered {error.response.status_code}")[:300]


class StewardKube:
    """Reads and writes of the console, made with one steward's token."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(self, action: Awaitable[T]) -> T:
        try:
            return await action
        except httpx2.HTTPStatusError as error:
            raise KubeRefused(error.response.status_code, _message(error)) from None
        except (httpx2.HTTPError, OSError):
            raise KubeRefused(0, "the Kubernetes API could not be reached") from None

    async def trains(self, namespace: str) -> list[Obj]:
        async def listed() -> list[Obj]:
            return [_plain(obj) async for obj in self._client.list(TRAINS, namespace=namespace)]

        return await self._call(listed())

    async def train(self, namespace: str, name: str) -> Obj:
        obj = await self._call(self._client.get(TRAINS, name, namespace=namespace))
        return _plain(obj)

    async def policy(self, namespace: str) -> Obj | None:
        try:
            obj = await self._call(
                self._client.get(POLICIES, constants.STATION_POLICY_NAME, namespace=namespace)
            )
        except KubeRefused as refused:
            if refused.status == 404:
                return None
            raise
        return _plain(obj)

    async def approvals(self, namespace: str) -> list[Obj]:
        async def listed() -> list[Obj]:
            return [_plain(obj) async for obj in self._client.list(APPROVALS, namespace=namespace)]

        return await self._call(listed())

    async def approval(self, namespace: str, name: str) -> Obj | None:
        try:
            obj = await self._call(self._client.get(APPROVALS, name, namespace=namespace))
        except KubeRefused as refused:
            if refused.status == 404:
                return None
            raise
        return _plain(obj)

    async def create_approval(self, approval: Obj) -> Obj:
        resource: Any = APPROVALS
        created = await self._call(self._client.create(resource(approval)))
        return _plain(created)


@asynccontextmanager
async def steward_kube(settings: Settings, token: str) -> AsyncIterator[StewardKube]:
    """A client for the station API's cluster that presents ``token`` (and nothing else)."""
    try:
        single = kube_config(settings).get()
        if single is None:
            raise ConfigError("the configuration names no context")
    except (ConfigError, OSError) as error:
        raise KubeRefused(0, f"no usable Kubernetes configuration: {error}") from None
    as_steward = single._replace(user=User(token=token))
    client = AsyncClient(
        as_steward,
        timeout=httpx2.Timeout(TIMEOUT_SECONDS),
        field_manager=FIELD_MANAGER,
        trust_env=False,
    )
    try:
        yield StewardKube(client)
    finally:
        await client.close()
