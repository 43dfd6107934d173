"""The operator's long-lived parts, wired together, and their start and stop.

Kopf runs the watches; this object owns what lives beside them: the cluster view, the work queue and
its workers, the periodic resync (which re-checks waiting Trains and keeps the ``pht_trains``
gauge current), the clients, the metrics and health endpoints and the liveness watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pht_contract import constants
from pht_contract.objects import Obj
from pht_operator import permissions, runobjects
from pht_operator.clusterview import ClusterView, RunObjectFields
from pht_operator.events import EventPoster
from pht_operator.kube import JOBS, NETWORK_POLICIES, PODS, ApiError, KubeClient, load_config
from pht_operator.liveness import HealthServer, Liveness, probe_watch
from pht_operator.metrics import OperatorMetrics
from pht_operator.names import RUN_COMPONENT
from pht_operator.notifications import Notifier
from pht_operator.reconciler import Context, reconcile_uid
from pht_operator.runwatch import watch_objects
from pht_operator.settings import OperatorSettings
from pht_operator.stationapi import StationApi
from pht_operator.statuses import is_terminal
from pht_operator.workqueues import WorkQueue

logger = logging.getLogger("pht_operator")

#: The labels of every Job and Pod the operator creates (the run's own, whatever Train).
RUN_OBJECT_LABELS = {
    constants.LABEL_MANAGED_BY: constants.MANAGED_BY,
    constants.LABEL_COMPONENT: RUN_COMPONENT,
}
#: How long the updates of a run's Job and Pods are gathered before they wake one pass: a real
#: Job controller and kubelet change a run several times within a second (pod created,
#: scheduled, started; the Job's counts and conditions as it ends), and a pass per update
#: wrote the status, and posted an Event, for states that had already passed.
RUN_OBJECT_SETTLE_SECONDS = 0.5
#: How often a missing permission is asked about again (a fixed Role needs no restart).
PERMISSION_RECHECK_SECONDS = 30.0


@dataclass
class OperatorApp:
    settings: OperatorSettings
    kube: KubeClient
    station: StationApi
    metrics: OperatorMetrics
    view: ClusterView = field(default_factory=ClusterView)
    queue: WorkQueue = field(init=False)
    liveness: Liveness = field(init=False)
    health: HealthServer = field(init=False)
    metrics_port: int | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.liveness = Liveness(
            self.metrics, self.settings.stall_factor * self.settings.watch_timeout_seconds
        )
        self.health = HealthServer(self.liveness)
        self.events = EventPoster(self.kube)
        self.notifier = Notifier.from_settings(self.settings, self.metrics)
        self.context = Context(
            settings=self.settings,
            kube=self.kube,
            station=self.station,
            metrics=self.metrics,
            view=self.view,
            events=self.events,
            notify=self.notifier,
        )
        self.queue = WorkQueue(
            self._reconcile,
            workers=self.settings.workers,
            max_backoff=self.settings.poll_interval_seconds,
            on_error=self._failed,
        )

    @classmethod
    def create(cls, settings: OperatorSettings, kubeconfig: Path | None = None) -> OperatorApp:
        return cls(
            settings=settings,
            kube=KubeClient.from_config(load_config(kubeconfig)),
            station=StationApi.from_settings(settings),
            metrics=OperatorMetrics(settings.station_name),
        )

    async def _reconcile(self, uid: str) -> None:
        await reconcile_uid(self.context, uid)

    def _failed(self, uid: str, exc: BaseException) -> None:
        self.metrics.reconcile_errors.inc()
        logger.warning("reconcile of Train %s failed, will retry: %s", uid, exc)

    async def start(self) -> None:
        self.metrics_port = self.metrics.serve(
            self.settings.metrics_port, self.settings.listen_host
        )
        await self.health.start(self.settings.health_port, self.settings.listen_host)
        await self.check_permissions()
        await self.ensure_default_deny()
        self.queue.start()
        self.notifier.start()
        self._tasks.append(asyncio.create_task(self._resync()))
        if self.health.missing_permissions:
            self._tasks.append(asyncio.create_task(self._recheck_permissions()))
        for kind, resource in (("jobs", JOBS), ("pods", PODS)):
            self._tasks.append(
                asyncio.create_task(
                    watch_objects(
                        self.kube,
                        resource,
                        self.settings.run_namespace,
                        RUN_OBJECT_LABELS,
                        functools.partial(self.run_object_event, kind),
                        self.settings.watch_timeout_seconds,
                        fields=RunObjectFields,
                    )
                )
            )
        for namespace in self.settings.station_namespaces:
            self._tasks.append(
                asyncio.create_task(
                    probe_watch(
                        self.kube, namespace, self.liveness, self.settings.watch_timeout_seconds
                    )
                )
            )

    def run_object_event(self, kind: str, event_type: str, body: Obj) -> None:
        """A Job or Pod of a run changed: record it, and wake its Train (after the updates
        of the next moment) if anything a pass reads of it changed."""
        self.liveness.heard()
        uid = self.view.put_run_object(
            kind, event_type, body, run_namespace=self.settings.run_namespace
        )
        if uid and uid in self.view.trains:
            self.queue.add_soon(uid, RUN_OBJECT_SETTLE_SECONDS)

    async def check_permissions(self) -> bool:
        """Ask the API server whether every verb the operator uses is granted."""
        refused = await permissions.missing(self.kube, permissions.required(self.settings))
        self.health.missing_permissions = [str(p) for p in refused]
        if refused:
            logger.error(
                "the operator's Kubernetes identity lacks %d permission(s): %s; Trains will "
                "not be run until its Roles grant them (see the chart's operator-rbac.yaml)",
                len(refused),
                "; ".join(self.health.missing_permissions),
            )
        return not refused

    async def _recheck_permissions(self) -> None:
        while True:
            await asyncio.sleep(PERMISSION_RECHECK_SECONDS)
            with contextlib.suppress(ApiError):
                if await self.check_permissions():
                    logger.info("every permission the operator needs is now granted")
                    return

    async def ensure_default_deny(self) -> None:
        """The run namespace denies all traffic before any run exists."""
        policy = runobjects.build_default_deny(self.settings)
        try:
            await self.kube.create(NETWORK_POLICIES, self.settings.run_namespace, policy)
        except ApiError as exc:
            if not exc.conflict:
                logger.warning("cannot ensure the run namespace's default-deny policy: %s", exc)

    async def _resync(self) -> None:
        """Re-check every Train that may be waiting on something no event announces."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_seconds)
            trains = list(self.view.trains.values())
            self.metrics.count_trains((b.get("status") or {}).get("summary") for b in trains)
            for body in trains:
                uid = body["metadata"]["uid"]
                status = body.get("status") or {}
                if (
                    not is_terminal(status)
                    or body["metadata"].get("deletionTimestamp")
                    or uid not in self.view.cleaned
                ):
                    self.queue.add(uid)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.queue.stop()
        await self.events.drain()
        await self.notifier.stop()
        await self.health.stop()
        await self.kube.aclose()
        await self.station.aclose()
