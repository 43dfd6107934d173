"""Liveness: is the operator still hearing from the API server?

Kopf reconnects dropped watches itself, but a watch that stays open and silent (a hung
connection, a wedged proxy) would leave the operator blind while it looks alive. Kubernetes
sends a BOOKMARK on every open watch at least once a minute, so *something* must arrive within a
few watch timeouts. Kopf consumes bookmarks internally, so the operator keeps one light watch of
its own on Trains (per station namespace) purely as a probe; every line it receives, every
listing and every watch the server ends at its timeout, and every event Kopf delivers counts
as "heard". ``/healthz`` answers 503
once nothing was heard for ``stall_factor × watch_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import aiohttp.web

from pht_operator import kubeapi
from pht_operator.kubeapi import ApiError, KubeApi
from pht_operator.metrics import OperatorMetrics

logger = logging.getLogger("pht_operator.liveness")


class Liveness:
    def __init__(self, metrics: OperatorMetrics, stall_after: float) -> None:
        self._metrics = metrics
        self.stall_after = stall_after
        self.last_heard = time.monotonic()

    def heard(self) -> None:
        self.last_heard = time.monotonic()
        self._metrics.last_watch_event.set(time.time())

    @property
    def silent_for(self) -> float:
        return time.monotonic() - self.last_heard

    @property
    def alive(self) -> bool:
        return self.silent_for <= self.stall_after


async def probe_watch(
    kube: KubeApi, namespace: str, liveness: Liveness, watch_timeout: float
) -> None:
    """List, then watch Trains with bookmarks; every line received counts as heard."""
    version: str | None = None
    while True:
        try:
            if version is None:
                listing = await kube._call("GET", kubeapi.TRAINS.path(namespace))
                version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                liveness.heard()
            params = {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(int(watch_timeout)),
            }
            if version:
                params["resourceVersion"] = version
            client = kube._client
            async with client.stream(
                "GET",
                kubeapi.TRAINS.path(namespace),
                params=params,
                timeout=watch_timeout + 10,
            ) as response:
                if response.status_code == 410:
                    version = None
                    continue
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        version = None
                        break
                    liveness.heard()
                    meta = (event.get("object") or {}).get("metadata") or {}
                    version = meta.get("resourceVersion", version)
                else:
                    if response.status_code == 200:
                        liveness.heard()  # the server ended the watch at its timeout: alive
        except asyncio.CancelledError:
            raise
        except (ApiError, ValueError, Exception) as exc:
            logger.debug("liveness watch interrupted: %s", type(exc).__name__)
            await asyncio.sleep(1.0)


class HealthServer:
    """``/healthz`` (liveness) and ``/readyz`` on the health port."""

    def __init__(self, liveness: Liveness) -> None:
        self.liveness = liveness
        #: Permissions the API server refuses (see :mod:`pht_operator.permissions`).
        self.missing_permissions: list[str] = []
        self._runner: aiohttp.web.AppRunner | None = None
        self.port: int | None = None

    async def _healthz(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        healthy = self.liveness.alive and not self.missing_permissions
        body: dict[str, object] = {
            "alive": healthy,
            "silentForSeconds": round(self.liveness.silent_for, 1),
        }
        if self.missing_permissions:
            body["missingPermissions"] = self.missing_permissions
        return aiohttp.web.json_response(body, status=200 if healthy else 503)

    async def _readyz(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"ready": True})

    async def start(self, port: int, host: str = "0.0.0.0") -> int:
        app = aiohttp.web.Application()
        app.add_routes(
            [aiohttp.web.get("/healthz", self._healthz), aiohttp.web.get("/readyz", self._readyz)]
        )
        self._runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
