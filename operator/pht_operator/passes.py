"""One reconcile pass over one Train: its state, and the few helpers every step uses.

A :class:`TrainPass` holds what one pass knows: the Train's body (from the watch cache), the
draft of its status, its parsed spec, the StationPolicy and the policy's decision, the run's
deterministic names and the shared :class:`Context`. The steps are plain functions over it,
grouped by stage (:mod:`finalizing`, :mod:`admitting`, :mod:`approving`, :mod:`running`,
:mod:`endings`) and ordered in one place, :func:`pht_operator.reconciler.reconcile`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from pht_contract import constants, wire
from pht_contract.evaluation import Decision
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.times import utc_iso
from pht_contract.trains import TrainSpec
from pht_operator.clusterview import ClusterView
from pht_operator.decisions import decide, parse_policy
from pht_operator.kube import POLICIES, TRAINS, ApiError, KubeClient
from pht_operator.metrics import OperatorMetrics
from pht_operator.names import RunNames, run_names
from pht_operator.notifications import Notifier
from pht_operator.settings import OperatorSettings
from pht_operator.stationapi import StationApi
from pht_operator.statuses import StatusDraft

logger = logging.getLogger("pht_operator.reconciler")

ACTOR = "pht-station-operator"


class Next(enum.Enum):
    """What a step tells the reconciler: go on to the next step, or this pass is done.

    A step that must be retried later raises :class:`TransientError` instead (the work queue
    retries it with backoff and counts it in ``pht_reconcile_errors``).
    """

    CONTINUE = "continue"
    DONE = "done"


class TransientError(Exception):
    """The pass could not finish; it is retried (and counted in reconcile errors)."""


class EventSink(Protocol):
    """Posts Kubernetes Events about a Train (the operator's EventPoster in production)."""

    def __call__(self, body: Obj, kind: str, reason: str, message: str, action: str) -> None: ...


@dataclass
class Context:
    """What every pass shares: settings, clients, metrics, the watch cache, the Event sink."""

    settings: OperatorSettings
    kube: KubeClient
    station: StationApi
    metrics: OperatorMetrics
    view: ClusterView
    events: EventSink
    notify: Notifier = field(default_factory=Notifier.off)


@dataclass
class TrainPass:
    """The state of one pass over one Train."""

    ctx: Context
    body: Obj
    draft: StatusDraft = field(init=False)
    names: RunNames = field(init=False)
    spec: TrainSpec | None = None
    policy: StationPolicySpec | None = None
    decision: Decision | None = None
    #: Provenance records of this pass not sent yet: the registration carries them, and any
    #: left are posted before the status that reports their steps is written.
    carried: list[wire.ProvenanceEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        meta = self.body["metadata"]
        self.draft = StatusDraft(self.body.get("status"), meta.get("generation"))
        self.names = run_names(self.uid, self.name)

    @property
    def uid(self) -> str:
        return str(self.body["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def status(self) -> Obj:
        """The status as this pass will write it (the draft)."""
        return self.draft.status

    @property
    def run(self) -> Obj:
        """``status.run``: where the run lives, once its Job exists."""
        run = self.status.get("run")
        return run if isinstance(run, dict) else {}

    def adopt(self, updated: Obj) -> None:
        """Continue from the Train as the API server answered a write."""
        self.body = updated
        self.ctx.view.put_watched_train(updated)
        self.draft = StatusDraft(updated.get("status"), updated["metadata"].get("generation"))


def event(train: TrainPass, kind: str, reason: str, message: str, *, action: str) -> None:
    """A Kubernetes Event for humans (``action``: what the operator did, e.g. ``Admit``), and
    the same line in the operator's log."""
    log = logger.warning if kind == "Warning" else logger.info
    log("Train %s/%s: %s: %s", train.namespace, train.name, reason, message)
    train.ctx.events(train.body, kind, reason, message, action)


def provenance_event(
    train: TrainPass, kind: wire.ProvenanceKind, step: str, **details: Any
) -> wire.ProvenanceEvent:
    """One step of this Train for the station API's provenance chain; its event id
    ``<uid>:<kind>:<step>`` makes it idempotent, whichever call brings it."""
    return wire.ProvenanceEvent(
        event_id=f"{train.uid}:{kind.value}:{step}",
        kind=kind,
        train_uid=train.uid,
        namespace=train.namespace,
        name=train.name,
        actor=ACTOR,
        at=utc_iso(),
        details=details,
    )


async def provenance(
    train: TrainPass, kind: wire.ProvenanceKind, step: str, **details: Any
) -> None:
    """Record one step in the station API's provenance chain now."""
    await train.ctx.station.record(provenance_event(train, kind, step, **details))


def carry_provenance(
    train: TrainPass, kind: wire.ProvenanceKind, step: str, **details: Any
) -> None:
    """Record a step that comes before the run's registration (admission, approval): the
    registration carries it, or :func:`flush` posts it before the status reports the step."""
    train.carried.append(provenance_event(train, kind, step, **details))


async def post_carried(train: TrainPass) -> None:
    """Post the records no registration has carried (each stays pending until it is sent)."""
    while train.carried:
        await train.ctx.station.record(train.carried[0])
        train.carried.pop(0)


async def flush(train: TrainPass) -> None:
    """Write the draft to ``/status`` if it changed, guarded by the version we read; the
    records of its steps reach the provenance chain first."""
    await post_carried(train)
    if not train.draft.changed:
        return
    patch = train.draft.patch(train.body["metadata"].get("resourceVersion"))
    try:
        updated = await train.ctx.kube.merge_patch(
            TRAINS, train.namespace, train.name, patch, status=True
        )
    except ApiError as exc:
        await refresh_on_conflict(train, exc)
        raise TransientError(f"status write refused: {exc.code} {exc.reason}") from exc
    train.adopt(updated)


async def refresh_on_conflict(train: TrainPass, exc: ApiError) -> None:
    """Our view was stale: fetch the Train so the retry decides on fresh data rather than
    waiting for the watch (which may be the thing that is behind)."""
    if not exc.conflict:
        return
    with contextlib.suppress(ApiError):
        fresh = await train.ctx.kube.get_or_none(TRAINS, train.namespace, train.name)
        if fresh is not None:
            train.ctx.view.put_watched_train(fresh)


async def load_policy(train: TrainPass) -> StationPolicySpec | None:
    """The namespace's StationPolicy from the watch cache (asked for once if not there yet)."""
    view = train.ctx.view
    body = view.policies.get(train.namespace)
    if body is None:
        # The watch cache may not have it yet (operator start): ask before refusing.
        body = await train.ctx.kube.get_or_none(
            POLICIES, train.namespace, constants.STATION_POLICY_NAME
        )
        if body is not None:
            view.policies[train.namespace] = body
    if body is None:
        return None
    try:
        return parse_policy(body)
    except ValidationError:
        return None


async def ensure_policy(train: TrainPass) -> StationPolicySpec:
    """The policy of an admitted Train (and its decision); gone meanwhile is transient."""
    if train.policy is None:
        train.policy = await load_policy(train)
    if train.policy is None:
        raise TransientError("the StationPolicy disappeared after admission")
    assert train.spec is not None
    if train.decision is None:
        train.decision = decide(train.spec, train.policy)
    return train.policy
