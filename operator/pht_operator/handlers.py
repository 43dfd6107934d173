"""Kopf wiring: watch streams feed the cluster view and wake the work queue; nothing else.

Handlers are ``on.event`` handlers on purpose: they run on every event, write nothing through
Kopf (no progress annotations, no Kopf finalizer) and never decide anything themselves. They
are coroutines, so Kopf runs them on the operator's event loop, where the cluster view and the
work queue live (a plain function would run in Kopf's thread pool: a thread switch per event,
and the queue woken from another thread). All
decisions happen in :mod:`pht_operator.reconciler`, one deduplicated pass per Train, so the
number of writes per Train is what the lifecycle needs and nothing more. An index on Trains
makes Kopf hold every handler until the initial listing is complete, so capacity is never
judged on a half-filled cache after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from pht_contract import constants
from pht_contract.conditions import Summary
from pht_operator.app import OperatorApp
from pht_operator.jsondata import copy_json
from pht_operator.statuses import is_terminal

logger = logging.getLogger("pht_operator.handlers")

GROUP = constants.API_GROUP
VERSION = constants.API_VERSION


class NoDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """No diff-base: Kopf builds one (a deep copy of the object's spec, labels and annotations)
    for every event, to compare it with the version last handled, but only change handlers
    (``on.create``, ``on.update``, ``on.resume``) and daemons read the comparison, and this
    operator has none (a test keeps it so). Nothing is stored either: the storage Kopf would
    write to is the annotations one, with the same key, should a change handler ever run."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def _wake_namespace(app: OperatorApp, namespace: str, summaries: set[str]) -> None:
    for body in app.view.trains_in(namespace):
        status = body.get("status") or {}
        if status.get("summary") in summaries and not is_terminal(status):
            app.queue.add(body["metadata"]["uid"])


def build_registry(app: OperatorApp) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        prefix = f"kopf.{GROUP}"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
        settings.persistence.diffbase_storage = NoDiffBaseStorage(
            prefix=prefix, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{prefix}/kopf"  # never ours: Kopf must not touch it
        # The API server parses timeoutSeconds as an integer: "60.0" is a 400 Bad Request.
        settings.watching.server_timeout = max(1, round(app.settings.watch_timeout_seconds))
        settings.watching.client_timeout = app.settings.watch_timeout_seconds + 10
        settings.posting.level = logging.INFO
        settings.networking.request_timeout = 30
        # Per-object workers only feed the queue; let idle ones go quickly (and stop fast).
        settings.queueing.idle_timeout = 1.0
        settings.queueing.exit_timeout = 1.0
        # Watch exactly the station namespaces: no cluster-wide scan of namespaces or CRDs,
        # which a namespaced operator may not list (403) and Kopf would retry for a minute.
        settings.scanning.disabled = True

    @kopf.index(GROUP, VERSION, constants.TRAIN_PLURAL, registry=registry)
    async def index_trains(body: Any, **_: Any) -> None:
        # Kopf holds all handlers until every index is filled from the initial listing.
        app.view.put_watched_train(dict(body))
        app.liveness.heard()

    @kopf.on.event(GROUP, VERSION, constants.TRAIN_PLURAL, registry=registry)
    async def train_event(event: Any, **_: Any) -> None:
        app.liveness.heard()
        body = event["object"]
        uid = body["metadata"]["uid"]
        namespace = body["metadata"].get("namespace", "")
        if event.get("type") == "DELETED":
            app.view.drop_train(uid)
            _wake_namespace(app, namespace, {Summary.WAITING.value})
            return
        app.view.put_watched_train(body)
        app.queue.add(uid)
        if is_terminal(body.get("status") or {}) or body["metadata"].get("deletionTimestamp"):
            _wake_namespace(app, namespace, {Summary.WAITING.value})

    @kopf.on.event(GROUP, VERSION, constants.POLICY_PLURAL, registry=registry)
    async def policy_event(event: Any, **_: Any) -> None:
        app.liveness.heard()
        body = event["object"]
        namespace = body["metadata"].get("namespace", "")
        if body["metadata"].get("name") != constants.STATION_POLICY_NAME:
            return
        if event.get("type") == "DELETED":
            app.view.policies.pop(namespace, None)
        else:
            app.view.policies[namespace] = copy_json(body)
        _wake_namespace(app, namespace, {Summary.WAITING.value, Summary.AWAITING_APPROVAL.value})

    @kopf.on.event(GROUP, VERSION, constants.APPROVAL_PLURAL, registry=registry)
    async def approval_event(event: Any, **_: Any) -> None:
        app.liveness.heard()
        body = event["object"]
        namespace = body["metadata"].get("namespace", "")
        name = body["metadata"]["name"]
        if event.get("type") == "DELETED":
            app.view.approvals[namespace].pop(name, None)
        else:
            app.view.approvals[namespace][name] = copy_json(body)
        _wake_namespace(app, namespace, {Summary.AWAITING_APPROVAL.value})

    return registry
