"""What every step of a reconcile pass shares: the Train being worked on, its status draft,
the clients, and the few helpers every step uses (Events, provenance, the guarded status write).

A pass is one :class:`~pht_operator.reconciler.TrainPass`; its steps are grouped by stage in
:mod:`admitting`, :mod:`running` and :mod:`endings`, each a mixin over :class:`PassBase`.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from pht_contract import constants, wire
from pht_contract.conditions import Reason, Summary
from pht_contract.evaluation import Decision, evaluate
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_operator import kubeapi
from pht_operator.kubeapi import ApiError, KubeApi
from pht_operator.metrics import OperatorMetrics
from pht_operator.names import RunNames, run_names
from pht_operator.settings import OperatorSettings
from pht_operator.stationapi import StationApi
from pht_operator.statuses import (
    StatusDraft,
    now_iso,
)
from pht_operator.stores import Store

Obj = dict[str, Any]
logger = logging.getLogger("pht_operator.reconciler")

ACTOR = "pht-station-operator"


class EventSink(Protocol):
    """Posts Kubernetes Events about a Train (the operator's EventPoster in production)."""

    def __call__(self, body: Obj, kind: str, reason: str, message: str) -> None: ...


class TransientError(Exception):
    """The pass could not finish; it is retried (and counted in reconcile errors)."""


@dataclass
class Context:
    settings: OperatorSettings
    kube: KubeApi
    station: StationApi
    metrics: OperatorMetrics
    store: Store
    events: EventSink


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def deadline_in(seconds: int) -> str:
    return (utcnow() + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class PassBase:
    """One reconcile pass over one Train: state and shared helpers."""

    def __init__(self, ctx: Context, body: Obj) -> None:
        self.ctx = ctx
        self.body = body
        meta = body["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.draft = StatusDraft(body.get("status"), meta.get("generation"))
        self.names: RunNames = run_names(self.uid, self.name)
        self.spec: TrainSpec | None = None
        self.policy: StationPolicySpec | None = None
        self.decision: Decision | None = None

    @property
    def status(self) -> Obj:
        return self.draft.status

    def event(self, kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event for humans, and the same line in the operator's log."""
        log = logger.warning if kind == "Warning" else logger.info
        log("Train %s/%s: %s: %s", self.namespace, self.name, reason, message)
        self.ctx.events(self.body, kind, reason, message)

    async def provenance(self, kind: wire.ProvenanceKind, step: str, **details: Any) -> None:
        await self.ctx.station.record(
            wire.ProvenanceEvent(
                event_id=f"{self.uid}:{kind.value}:{step}",
                kind=kind,
                train_uid=self.uid,
                namespace=self.namespace,
                name=self.name,
                actor=ACTOR,
                at=now_iso(),
                details=details,
            )
        )

    async def flush(self) -> None:
        """Write the draft to ``/status`` if it changed, guarded by the version we read."""
        if not self.draft.changed:
            return
        patch = self.draft.patch(self.body["metadata"].get("resourceVersion"))
        try:
            updated = await self.ctx.kube.patch(
                kubeapi.TRAINS, self.namespace, self.name, patch, sub="status"
            )
        except ApiError as exc:
            await self.refresh_on_conflict(exc)
            raise TransientError(f"status write refused: {exc.code} {exc.reason}") from exc
        self.body = updated
        self.ctx.store.put_train(updated)
        self.draft = StatusDraft(updated.get("status"), updated["metadata"].get("generation"))

    async def refresh_on_conflict(self, exc: ApiError) -> None:
        """Our view was stale: fetch the Train so the retry decides on fresh data rather than
        waiting for the watch (which may be the thing that is behind)."""
        if not exc.conflict:
            return
        with contextlib.suppress(ApiError):
            fresh = await self.ctx.kube.get_or_none(kubeapi.TRAINS, self.namespace, self.name)
            if fresh is not None:
                self.ctx.store.put_train(fresh)

    def mark_summary(self, summary: Summary) -> None:
        self.draft.set_summary(summary)

    async def ensure_finalizer(self) -> None:
        finalizers = list(self.body["metadata"].get("finalizers") or [])
        if constants.FINALIZER in finalizers:
            return
        patch = {
            "metadata": {
                "finalizers": [*finalizers, constants.FINALIZER],
                "resourceVersion": self.body["metadata"]["resourceVersion"],
            }
        }
        try:
            updated = await self.ctx.kube.patch(kubeapi.TRAINS, self.namespace, self.name, patch)
        except ApiError as exc:
            await self.refresh_on_conflict(exc)
            raise TransientError(f"finalizer write refused: {exc.code}") from exc
        self.body = updated
        self.ctx.store.put_train(updated)
        self.draft = StatusDraft(updated.get("status"), updated["metadata"].get("generation"))

    async def load_policy(self) -> StationPolicySpec | None:
        body = self.ctx.store.policies.get(self.namespace)
        if body is None:
            # The watch cache may not have it yet (operator start): ask before refusing.
            body = await self.ctx.kube.get_or_none(
                kubeapi.POLICIES, self.namespace, constants.STATION_POLICY_NAME
            )
            if body is not None:
                self.ctx.store.policies[self.namespace] = body
        if body is None:
            return None
        try:
            return StationPolicySpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return None

    async def ensure_policy(self) -> StationPolicySpec:
        if self.policy is None:
            self.policy = await self.load_policy()
        if self.policy is None:
            raise TransientError("the StationPolicy disappeared after admission")
        assert self.spec is not None
        if self.decision is None:
            self.decision = evaluate(self.spec, self.policy)
        return self.policy

    # Steps that live in other modules but are called across them (see endings.py).
    async def succeed(self) -> None:
        raise NotImplementedError

    async def fail(self, reason: Reason, message: str, *, delete_job: bool) -> None:
        raise NotImplementedError

    async def finish(self, summary: Summary, reason: Reason | str, message: str) -> None:
        raise NotImplementedError
