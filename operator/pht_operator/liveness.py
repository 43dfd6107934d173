"""Liveness: is the operator still hearing from the API server?

Kopf reconnects dropped watches itself, but a watch that stays open and silent (a hung
connection, a wedged proxy) would leave the operator blind while it looks alive. Kubernetes
sends a BOOKMARK on every open watch at least once a minute, so *something* must arrive within a
few watch timeouts. Kopf consumes bookmarks internally, so the operator keeps one light watch of
its own on Trains (per station namespace) purely as a probe; every event it receives
(bookmarks included), every listing and every watch the server ends at its timeout, and every
event Kopf delivers counts as "heard". The probe asks only for Trains carrying a label no Train
needs (:data:`PROBE_LABELS`): the API server sends bookmarks to every watch that asks for
them, whatever its selector, so the probe hears them without receiving (and decoding) every
Train a second time — Kopf's watch already counts those. ``/healthz`` answers 503 once nothing
was heard for ``stall_factor × watch_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp.web

from pht_contract import constants
from pht_operator.kube import TRAINS, ApiError, KubeClient
from pht_operator.metrics import OperatorMetrics

logger = logging.getLogger("pht_operator.liveness")

#: The probe's label selector: a label no Train carries, so its watch brings only bookmarks.
PROBE_LABELS = {f"{constants.API_GROUP}/liveness-probe": "bookmarks-only"}
#: A failed probe watch is retried after 1, 2, 4 ... seconds, at most this often.
RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0


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
    kube: KubeClient, namespace: str, liveness: Liveness, watch_timeout: float
) -> None:
    """List, then watch Trains (only :data:`PROBE_LABELS`) with bookmarks; every event received
    counts as heard, and so does every listing and every watch the server ends at its timeout."""
    version: str | None = None
    server_timeout = max(1, round(watch_timeout))
    delay = RETRY_SECONDS
    while True:
        try:
            if version is None:
                _, version = await kube.list(TRAINS, namespace, PROBE_LABELS)
                liveness.heard()
            async for kind, seen_version in kube.watch_heartbeats(
                namespace, version, server_timeout, PROBE_LABELS
            ):
                if kind == "ERROR":
                    version = None
                    break
                liveness.heard()  # an event, a bookmark, or the server ending the watch
                version = seen_version or version
                delay = RETRY_SECONDS
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            if exc.code == 410:
                version = None
                continue
            logger.debug("liveness watch refused: %s", exc.code)
            version = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        except Exception as exc:  # a dropped connection or a malformed line: start over
            logger.debug("liveness watch interrupted: %s", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)


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

    async def start(self, port: int, host: str) -> int:
        app = aiohttp.web.Application()
        app.add_routes(
            [aiohttp.web.get("/healthz", self._healthz), aiohttp.web.get("/readyz", self._readyz)]
        )
        self._runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
