"""What a Job and its Pods say about a run, reduced to one :class:`RunPhase`.

Pure, so every cluster state (real or simulated) maps to a reason in one table:
Job conditions first (``Complete``, ``Failed`` with ``DeadlineExceeded`` /
``BackoffLimitExceeded``), then ``spec.suspend`` (a queue such as Kueue holds it: no pending
timer), then the pods (image-pull and container-config errors fail fast; unschedulable waits
up to the policy's pending timeout, counted from when the pod became unschedulable).

A run that failed its attempts names the reason its train gave (the last failed container's
termination message) only through :func:`pht_contract.trainfailures.shown_reason`: a listed
reason, or ``UnlistedReason``; nothing else of the message is ever used.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pht_contract.conditions import Reason
from pht_contract.objects import Obj
from pht_contract.times import parse_utc
from pht_contract.trainfailures import shown_reason

IMAGE_PULL_REASONS: Final = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
CONFIG_REASONS: Final = frozenset({"CreateContainerConfigError", "CreateContainerError"})


class Phase(StrEnum):
    QUEUED = "Queued"  # suspended by a queue, or no pod yet
    PENDING = "Pending"  # pod exists, not running yet
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class RunPhase:
    phase: Phase
    reason: Reason
    message: str
    attempts: int = 0
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None

    @property
    def final(self) -> bool:
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


def job_condition(job: Obj, kind: str) -> Obj | None:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _attempts(job: Obj) -> int:
    """Pods the Job has started: active, ended, and ended but not yet counted (a real Job
    controller moves an ended pod out of ``active`` before it adds it to ``succeeded`` or
    ``failed``, so without these the count would drop for a moment)."""
    status = job.get("status", {})
    uncounted = status.get("uncountedTerminatedPods") or {}
    return (
        int(status.get("failed", 0))
        + int(status.get("succeeded", 0))
        + int(status.get("active", 0))
        + len(uncounted.get("succeeded") or [])
        + len(uncounted.get("failed") or [])
    )


def _counted_pods(status: Obj) -> bool:
    uncounted = status.get("uncountedTerminatedPods") or {}
    counts = (status.get(key) or 0 for key in ("active", "succeeded", "failed"))
    return any(counts) or bool(uncounted.get("succeeded") or uncounted.get("failed"))


def train_message(pods: list[Obj]) -> str | None:
    """The termination message of the container that ended last with an error of its own.

    Only containers that exited non-zero by themselves (``reason: Error``) count: a runtime's
    start error or an out-of-memory kill is the node's text, not the train's.
    """
    ended: list[tuple[str, str]] = []
    for pod in pods:
        for container in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated.get("reason") != "Error" or not terminated.get("exitCode"):
                continue
            message = terminated.get("message")
            if isinstance(message, str):
                ended.append((str(terminated.get("finishedAt") or ""), message))
    return max(ended)[1] if ended else None


def _ended(pod: Obj) -> bool:
    return any(
        (container.get("state") or {}).get("terminated")
        for container in pod.get("status", {}).get("containerStatuses") or []
    )


def misses_ended_pod(phase: RunPhase, pods: list[Obj]) -> bool:
    """Whether a run failed its attempts while none of ``pods`` shows a container that ended.

    A Job's outcome and its pods' last statuses come through separate watches, so the outcome
    can arrive first; the pods are then worth reading once for the reason the train gave.
    """
    return (
        phase.phase == Phase.FAILED
        and phase.reason == Reason.BACKOFF_LIMIT_EXCEEDED
        and not any(_ended(pod) for pod in pods)
    )


def classify(job: Obj, pods: list[Obj], pending_seconds: int, now: datetime.datetime) -> RunPhase:
    status = job.get("status", {})
    attempts = _attempts(job)
    started = parse_utc(status.get("startTime"))
    complete = job_condition(job, "Complete")
    if complete is not None:
        return RunPhase(
            Phase.SUCCEEDED,
            Reason.RUN_COMPLETED,
            "the run finished",
            max(attempts, 1),
            started,
            parse_utc(status.get("completionTime"))
            or parse_utc(complete.get("lastTransitionTime")),
        )
    failed = job_condition(job, "Failed") or job_condition(job, "FailureTarget")
    if failed is not None:
        reason = {
            "DeadlineExceeded": Reason.DEADLINE_EXCEEDED,
            "BackoffLimitExceeded": Reason.BACKOFF_LIMIT_EXCEEDED,
        }.get(str(failed.get("reason")), Reason.BACKOFF_LIMIT_EXCEEDED)
        limit = job.get("spec", {}).get("activeDeadlineSeconds")
        message = (
            f"the run exceeded its deadline of {limit}s"
            if reason == Reason.DEADLINE_EXCEEDED
            else f"the run failed after {max(attempts, 1)} attempt(s) (backoffLimit reached)"
        )
        given = (
            shown_reason(train_message(pods)) if reason == Reason.BACKOFF_LIMIT_EXCEEDED else None
        )
        if given is not None:
            message += f"; the train reported {given}"
        return RunPhase(
            Phase.FAILED,
            reason,
            message,
            max(attempts, 1),
            started,
            parse_utc(failed.get("lastTransitionTime")) or now,
        )
    if job.get("spec", {}).get("suspend"):
        return RunPhase(
            Phase.QUEUED, Reason.QUEUED, "the run waits in the cluster's queue", attempts
        )
    live = [p for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    for pod in live:
        for container in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            why = waiting.get("reason")
            if why in IMAGE_PULL_REASONS:
                return RunPhase(
                    Phase.FAILED,
                    Reason.IMAGE_PULL_FAILED,
                    f"the image cannot be pulled ({why})",
                    max(attempts, 1),
                    started,
                    now,
                )
            if why in CONFIG_REASONS:
                return RunPhase(
                    Phase.FAILED,
                    Reason.CREATE_CONTAINER_CONFIG_ERROR,
                    f"the run's container cannot be created ({why})",
                    max(attempts, 1),
                    started,
                    now,
                )
    for pod in live:
        phase = pod.get("status", {}).get("phase")
        if phase == "Running":
            return RunPhase(Phase.RUNNING, Reason.RUNNING, "the run is running", attempts, started)
    for pod in live:
        for cond in pod.get("status", {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                since = parse_utc(cond.get("lastTransitionTime")) or parse_utc(
                    pod.get("metadata", {}).get("creationTimestamp")
                )
                waited = (now - since).total_seconds() if since else 0.0
                if waited >= pending_seconds:
                    return RunPhase(
                        Phase.FAILED,
                        Reason.UNSCHEDULABLE,
                        f"no node could take the run for {int(waited)}s (pending timeout "
                        f"{pending_seconds}s): {str(cond.get('message', ''))[:200]}",
                        max(attempts, 1),
                        started,
                        now,
                    )
                return RunPhase(
                    Phase.PENDING,
                    Reason.PENDING,
                    f"no node can take the run yet; it fails after {pending_seconds}s "
                    "unschedulable",
                    attempts,
                    started,
                )
    if live:
        return RunPhase(Phase.PENDING, Reason.PENDING, "the run is starting", attempts, started)
    if pods or _counted_pods(status):
        # A pod has ended but the Job controller has not yet written the Job's outcome (a real
        # controller lags its pods by a sync), or the Job controller counts a pod this process
        # does not see right now (its pod watch re-listing): either way the run has started and
        # has not gone back to the queue.
        return RunPhase(Phase.RUNNING, Reason.RUNNING, "the run is running", attempts, started)
    return RunPhase(
        Phase.QUEUED, Reason.JOB_CREATED, "the run's Job was created", attempts, started
    )
