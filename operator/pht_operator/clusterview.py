"""The operator's in-memory view of the cluster, fed by Kopf's watch streams.

Trains (by uid), StationPolicies (by namespace) and TrainApprovals (by namespace and name).
It is a cache, not a source of truth: everything that must survive a restart lives in the
Train status or in the run namespace, and a restarted operator rebuilds this from the initial
listing. The one piece of memory that is not in the cluster — admissions granted but not yet
visible in a watch event — is kept here so capacity is never over-committed within a process.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pht_contract import constants
from pht_contract.conditions import ConditionType, Summary
from pht_contract.objects import Obj
from pht_contract.trainfailures import shown_reason
from pht_operator.jsondata import copy_json
from pht_operator.statuses import is_terminal, is_true

#: Summaries of Trains that hold one of the policy's concurrent-run slots.
_SLOT_SUMMARIES = frozenset(
    {Summary.PENDING, Summary.AWAITING_APPROVAL, Summary.QUEUED, Summary.RUNNING, None}
)


@dataclass(slots=True)
class Marks:
    """Monotonic timestamps of transitions this process saw (sub-second metrics)."""

    first_seen: float = field(default_factory=time.monotonic)
    admitted: float | None = None
    approved: float | None = None


@dataclass
class ClusterView:
    trains: dict[str, Obj] = field(default_factory=dict)
    policies: dict[str, Obj] = field(default_factory=dict)
    approvals: dict[str, dict[str, Obj]] = field(default_factory=lambda: defaultdict(dict))
    reserved: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    marks: dict[str, Marks] = field(default_factory=dict)
    #: Terminal Trains whose clean-up ran in this process (it is idempotent; once is enough).
    cleaned: set[str] = field(default_factory=set)
    #: Suspended Trains whose Job was looked up by name once in this process (a pass may have
    #: created it and died before recording it); later the Job watch is enough.
    suspend_checked: set[str] = field(default_factory=set)
    #: Run Jobs and Pods by their Train's uid label, from Kopf's watches: following a run
    #: costs no API reads (a Job missing here is confirmed with a GET before RunLost).
    jobs: dict[str, Obj] = field(default_factory=dict)
    pods: dict[str, dict[str, Obj]] = field(default_factory=lambda: defaultdict(dict))
    #: When (monotonic) each running Train's progress was last read from the station API.
    progress_read: dict[str, float] = field(default_factory=dict)

    def put_train(self, body: Obj) -> str:
        body = _without_bookkeeping(body)
        uid = str(body["metadata"]["uid"])
        current = self.trains.get(uid)
        if current is None or _newer(body, current):
            self.trains[uid] = body
        self.marks.setdefault(uid, Marks())
        return uid

    def put_watched_train(self, body: Obj) -> str:
        """A Train as a watch or the API server's answer to a write delivered it: copied into
        the cache (keys and short strings interned), without the API server's bookkeeping
        (dropped before copying, not after). A version the cache holds already (the
        operator's own write seen again by the watch, or the same event handed to the index
        and the event handler) is not copied again."""
        meta = body["metadata"]
        uid = str(meta["uid"])
        current = self.trains.get(uid)
        version = meta.get("resourceVersion")
        if (
            current is not None
            and version is not None
            and current["metadata"].get("resourceVersion") == version
        ):
            self.marks.setdefault(uid, Marks())
            return uid
        return self.put_train(copy_json(_without_bookkeeping(body)))

    def put_run_object(
        self, kind: str, event_type: str | None, body: Obj, *, run_namespace: str
    ) -> str | None:
        """Record a Job or Pod of a run; returns its Train's uid (from the label) if what
        following the run reads has changed, None if the event changed nothing of it.

        Only the run namespace counts (the run-object watches cover nothing else, and a Job or
        Pod elsewhere carrying a Train's labels must never fake its outcome).
        Only what following a run reads is kept (no pod template, no container specs, no
        timestamps of probes): with a thousand runs the cache would otherwise dominate the
        operator's memory, and on a real cluster most updates of a run's pods and Job (a node
        assigned, a readiness count, the Job's TTL) change nothing a pass decides on, so they
        wake no pass.
        """
        if (body.get("metadata") or {}).get("namespace") != run_namespace:
            return None
        body = _job_view(body) if kind == "jobs" else _pod_view(body)
        meta = body["metadata"]
        uid = (meta.get("labels") or {}).get(constants.LABEL_TRAIN_UID)
        if not uid:
            return None
        uid = str(uid)
        if kind == "jobs":
            current = self.jobs.get(uid)
            if event_type == "DELETED":
                if current is not None and current["metadata"].get("uid") == meta.get("uid"):
                    self.jobs.pop(uid, None)
                return uid
            if current is not None and not _newer(body, current):
                return None
            self.jobs[uid] = body
        else:
            pods = self.pods[uid]
            current = pods.get(meta["name"])
            if event_type == "DELETED":
                pods.pop(meta["name"], None)
                return uid
            pods[meta["name"]] = body
        return uid if current is None or not _same_but_version(body, current) else None

    def drop_train(self, uid: str) -> None:
        body = self.trains.pop(uid, None)
        self.marks.pop(uid, None)
        self.cleaned.discard(uid)
        self.suspend_checked.discard(uid)
        self.jobs.pop(uid, None)
        self.pods.pop(uid, None)
        self.progress_read.pop(uid, None)
        if body is not None:
            self.reserved[body["metadata"]["namespace"]].discard(uid)

    def progress_due(self, uid: str, every: float) -> bool:
        """Whether a running Train's progress should be read now: not on the pass that sees
        the run start (a run that just started has reported nothing yet), then at most once
        per ``every`` seconds. The station API's progress changes on its own clock, not with
        the pod and Job updates that wake most passes; the run's end reads it anyway."""
        now = time.monotonic()
        last = self.progress_read.setdefault(uid, now)
        if now - last < every:
            return False
        self.progress_read[uid] = now
        return True

    def trains_in(self, namespace: str) -> list[Obj]:
        return [b for b in self.trains.values() if b["metadata"].get("namespace") == namespace]

    def active_count(self, namespace: str, excluding: str) -> int:
        """Trains of a namespace that hold a run slot (admitted and not finished)."""
        active = set(self.reserved[namespace])
        for body in self.trains_in(namespace):
            status = body.get("status") or {}
            uid = body["metadata"]["uid"]
            if (
                is_true(status, ConditionType.ADMITTED)
                and not is_terminal(status)
                and status.get("summary") in _SLOT_SUMMARIES
                and not body["metadata"].get("deletionTimestamp")
            ):
                active.add(uid)
        active.discard(excluding)
        return len(active)

    def waiting_before(self, body: Obj) -> int:
        """Trains of the namespace waiting for capacity that arrived earlier (first come, first
        served: a newcomer never takes a slot an older waiting Train is due)."""
        meta = body["metadata"]
        mine = (meta.get("creationTimestamp") or "", meta["name"])
        count = 0
        for other in self.trains_in(meta["namespace"]):
            other_meta = other["metadata"]
            status = other.get("status") or {}
            if (
                other_meta["uid"] != meta["uid"]
                and not other_meta.get("deletionTimestamp")
                and not is_terminal(status)
                and status.get("summary") == Summary.WAITING
                and (other_meta.get("creationTimestamp") or "", other_meta["name"]) < mine
            ):
                count += 1
        return count

    def release_slot(self, namespace: str, uid: str) -> None:
        self.reserved[namespace].discard(uid)


class _RunObjectMeta(msgspec.Struct, omit_defaults=True):
    name: Any = None
    namespace: Any = None
    uid: Any = None
    resourceVersion: Any = None
    creationTimestamp: Any = None
    labels: Any = None
    ownerReferences: Any = None
    deletionTimestamp: Any = None


class _JobSpecFields(msgspec.Struct, omit_defaults=True):
    suspend: Any = None
    activeDeadlineSeconds: Any = None
    backoffLimit: Any = None
    ttlSecondsAfterFinished: Any = None


class RunObjectFields(msgspec.Struct, omit_defaults=True):
    """What the run-object watches read of each Job or Pod (and of a watch's ``ERROR``
    Status): the fields :func:`_job_view` and :func:`_pod_view` keep, before they trim
    further. A pod's template, containers and volumes, and every object's ``managedFields``,
    are skipped by the decoder."""

    metadata: _RunObjectMeta | None = None
    spec: _JobSpecFields | None = None
    status: Any = None
    code: Any = None
    reason: Any = None
    message: Any = None


_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "labels",
    "ownerReferences",
    "deletionTimestamp",
)
_KEPT_SPEC = ("suspend", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished")
_KEPT_JOB_STATUS = (
    "active",
    "succeeded",
    "failed",
    "startTime",
    "completionTime",
    "uncountedTerminatedPods",
)
_KEPT_CONDITION = ("type", "status", "reason", "message", "lastTransitionTime")
_KEPT_TERMINATED = ("reason", "exitCode", "finishedAt")


#: Kept by the API server and kubectl for their own use; the operator never reads them, and
#: with a thousand Trains they were a large share of the cache (the last-applied annotation
#: repeats the whole spec).
_BOOKKEEPING_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def _without_bookkeeping(body: Obj) -> Obj:
    """The Train without ``managedFields`` and kubectl's last-applied copy of itself."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if "managedFields" not in meta and _BOOKKEEPING_ANNOTATION not in annotations:
        return body
    meta = {key: value for key, value in meta.items() if key != "managedFields"}
    if _BOOKKEEPING_ANNOTATION in annotations:
        meta["annotations"] = {
            key: value for key, value in annotations.items() if key != _BOOKKEEPING_ANNOTATION
        }
    return {**body, "metadata": meta}


def _job_view(body: Obj) -> Obj:
    """What following a run reads of its Job (:mod:`pht_operator.jobstates`, the adoption by
    uid, the queue-wait metric)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    view: Obj = {
        "metadata": {key: copy_json(meta[key]) for key in _KEPT_METADATA if key in meta},
        "spec": {key: spec[key] for key in _KEPT_SPEC if key in spec},
        "status": {key: copy_json(status[key]) for key in _KEPT_JOB_STATUS if key in status},
    }
    conditions = status.get("conditions")
    if conditions:
        view["status"]["conditions"] = [
            {key: cond[key] for key in _KEPT_CONDITION if key in cond} for cond in conditions
        ]
    return view


def _pod_view(body: Obj) -> Obj:
    """What following a run reads of one of its pods: the phase, why a container waits or how
    it ended (its termination message only as the reason a researcher may see), whether and
    since when it is unschedulable, and which Job owns it."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    view_status: Obj = {}
    if "phase" in status:
        view_status["phase"] = status["phase"]
    scheduled = [
        {key: cond[key] for key in _KEPT_CONDITION if key in cond}
        for cond in status.get("conditions") or []
        if cond.get("type") == "PodScheduled"
    ]
    if scheduled:
        view_status["conditions"] = scheduled
    containers = status.get("containerStatuses")
    if containers:
        view_status["containerStatuses"] = [
            _container_state(container.get("state") or {}) for container in containers
        ]
    return {
        "metadata": {key: copy_json(meta[key]) for key in _KEPT_METADATA if key in meta},
        "status": view_status,
    }


def _container_state(state: Obj) -> Obj:
    waiting, terminated = state.get("waiting"), state.get("terminated")
    if waiting:
        return {"state": {"waiting": {"reason": waiting.get("reason")}}}
    if terminated:
        ended = {key: terminated[key] for key in _KEPT_TERMINATED if key in terminated}
        shown = shown_reason(terminated.get("message"))
        if shown is not None:
            ended["message"] = shown
        return {"state": {"terminated": ended}}
    return {"state": {}}


def _same_but_version(candidate: Obj, current: Obj) -> bool:
    """Equal apart from ``metadata.resourceVersion``."""
    if candidate.keys() != current.keys():
        return False
    for key, value in candidate.items():
        if key != "metadata" and value != current[key]:
            return False
    mine, theirs = dict(candidate["metadata"]), dict(current["metadata"])
    mine.pop("resourceVersion", None)
    theirs.pop("resourceVersion", None)
    return mine == theirs


def _newer(candidate: Obj, current: Obj) -> bool:
    """Prefer the higher resourceVersion (the operator's own writes race with watch events)."""
    try:
        return int(candidate["metadata"]["resourceVersion"]) >= int(
            current["metadata"]["resourceVersion"]
        )
    except (KeyError, ValueError, TypeError):
        return True
