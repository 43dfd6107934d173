"""A simulated Job controller: moves Jobs and their Pods through the states a cluster shows.

The emulated API server has no controllers, so a Job the operator creates would sit there
forever. This class plays kube-controller-manager, the scheduler and the kubelet *as far as the
API shows them*: it creates the Job's Pod, marks it unschedulable, stuck pulling its image,
running, succeeded or failed, and writes the Job status (conditions ``Complete``, ``Failed``
with ``DeadlineExceeded``/``BackoffLimitExceeded``, ``Suspended``) the way Kubernetes 1.31+
does. Nothing is executed. Every object it writes carries the annotation
:data:`~pht_sandbox.emulator.SIMULATED_ANNOTATION` so nobody mistakes it for a real run.

Tests drive it step by step (``await jobs.run(ns, name)``) or let :meth:`autopilot` move each
new Job along a scripted path. It also applies ``ttlSecondsAfterFinished`` like the TTL
controller, so the operator's "TTL only after the outcome is recorded" rule is observable.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable
from typing import Any, Final, Literal

from pht_contract.objects import Obj
from pht_contract.times import utc_iso
from pht_sandbox.emulator import JOBS, PODS, SIMULATED_ANNOTATION, ApiFailure, ClusterEmulator

Outcome = Literal[
    "succeed",
    "fail",
    "deadline",
    "unschedulable",
    "image-pull",
    "hold",
]

JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"
#: What kube-scheduler writes on a GPU run that no node fits, word for word, on a cluster of one
#: CPU node and two GPU nodes without enough free GPUs (checked against the real scheduler).
UNSCHEDULABLE_MESSAGE: Final = (
    "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
    "2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
    "3 Preemption is not helpful for scheduling."
)
CONTROLLER_UID_LABEL: Final = "batch.kubernetes.io/controller-uid"


def _condition(kind: str, status: str, reason: str, message: str) -> Obj:
    now = utc_iso()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


class JobController:
    """Plays the Job controller, scheduler and kubelet for an :class:`ClusterEmulator`."""

    def __init__(self, cluster: ClusterEmulator) -> None:
        self.cluster = cluster
        self._tasks: set[asyncio.Task[None]] = set()
        self._autopilot: Callable[[Obj], Outcome] | None = None
        self._step = 0.05
        cluster.add_listener(self._on_change)

    # -- reading --------------------------------------------------------------------------------

    def job(self, namespace: str, name: str) -> Obj:
        job = self.cluster.get_object(JOBS, namespace, name)
        if job is None:
            raise ApiFailure(404, "NotFound", f"job {namespace}/{name} not found")
        return job

    def pods(self, namespace: str, job_name: str) -> list[Obj]:
        return self.cluster.list_objects(PODS, namespace, labels=f"{JOB_NAME_LABEL}={job_name}")

    # -- steps a test drives ------------------------------------------------------------------

    async def hold(self, namespace: str, name: str) -> Obj:
        """A queue (Kueue) keeps the Job suspended: no pod, ``Suspended=True``."""
        return await self._job_status(
            namespace,
            name,
            {
                "conditions": [_condition("Suspended", "True", "JobSuspended", "Job suspended")],
                "active": 0,
            },
        )

    async def schedule(self, namespace: str, name: str) -> Obj:
        """The Job starts: one Pod, scheduled but still pulling (``Pending``)."""
        pod = await self._ensure_pod(namespace, name)
        await self._job_status(
            namespace, name, {"active": 1, "ready": 0, "startTime": utc_iso(), "conditions": []}
        )
        return await self._pod_status(
            namespace,
            pod,
            {
                "phase": "Pending",
                "conditions": [_condition("PodScheduled", "True", "", "")],
                "containerStatuses": [self._waiting("ContainerCreating", "")],
            },
        )

    async def unschedulable(self, namespace: str, name: str) -> Obj:
        """No node fits (e.g. no free GPU): the Pod stays ``Pending``/``Unschedulable``."""
        pod = await self._ensure_pod(namespace, name)
        await self._job_status(namespace, name, {"active": 1, "ready": 0, "startTime": utc_iso()})
        return await self._pod_status(
            namespace,
            pod,
            {
                "phase": "Pending",
                "conditions": [
                    _condition(
                        "PodScheduled",
                        "False",
                        "Unschedulable",
                        UNSCHEDULABLE_MESSAGE,
                    )
                ],
            },
        )

    async def image_pull_error(
        self, namespace: str, name: str, reason: str = "ErrImagePull"
    ) -> Obj:
        """The kubelet cannot pull the image (``ErrImagePull``, ``ImagePullBackOff``, ...)."""
        pod = await self._ensure_pod(namespace, name)
        await self._job_status(namespace, name, {"active": 1, "ready": 0, "startTime": utc_iso()})
        return await self._pod_status(
            namespace,
            pod,
            {
                "phase": "Pending",
                "conditions": [_condition("PodScheduled", "True", "", "")],
                "containerStatuses": [self._waiting(reason, "simulated pull failure")],
            },
        )

    async def run(self, namespace: str, name: str) -> Obj:
        """The container runs."""
        pod = await self._ensure_pod(namespace, name)
        await self._pod_status(
            namespace,
            pod,
            {
                "phase": "Running",
                "conditions": [
                    _condition("PodScheduled", "True", "", ""),
                    _condition("Ready", "True", "", ""),
                ],
                "containerStatuses": [
                    {
                        "name": "train",
                        "ready": True,
                        "restartCount": 0,
                        "image": "",
                        "imageID": "",
                        "state": {"running": {"startedAt": utc_iso()}},
                    }
                ],
            },
        )
        status = {"active": 1, "ready": 1}
        if "startTime" not in self.job(namespace, name).get("status", {}):
            status["startTime"] = utc_iso()  # type: ignore[assignment]
        return await self._job_status(namespace, name, status)

    async def succeed(self, namespace: str, name: str) -> Obj:
        pod = await self._ensure_pod(namespace, name)
        await self._pod_status(namespace, pod, {"phase": "Succeeded", "conditions": []})
        return await self._job_status(
            namespace,
            name,
            {
                "active": 0,
                "ready": 0,
                "succeeded": 1,
                "completionTime": utc_iso(),
                "conditions": [
                    _condition("SuccessCriteriaMet", "True", "CompletionsReached", ""),
                    _condition("Complete", "True", "CompletionsReached", "Reached completions"),
                ],
            },
        )

    async def fail(
        self,
        namespace: str,
        name: str,
        reason: str = "BackoffLimitExceeded",
        *,
        exit_code: int | None = None,
        message: str = "",
    ) -> Obj:
        """The Job fails: ``BackoffLimitExceeded`` or ``DeadlineExceeded``.

        With ``exit_code``, its pod's container ended by itself with that code and the
        termination ``message`` (as a kubelet reports it), else the pod just failed.
        """
        messages = {
            "BackoffLimitExceeded": "Job has reached the specified backoff limit",
            "DeadlineExceeded": "Job was active longer than specified deadline",
        }
        pod_status: Obj = {"phase": "Failed"}
        if exit_code is not None:
            pod_status["containerStatuses"] = [self._terminated(exit_code, message)]
        for pod in self.pods(namespace, name):
            await self._pod_status(namespace, pod["metadata"]["name"], pod_status)
        attempts = int(self.job(namespace, name)["spec"].get("backoffLimit", 0)) + 1
        return await self._job_status(
            namespace,
            name,
            {
                "active": 0,
                "ready": 0,
                "failed": attempts if reason == "BackoffLimitExceeded" else 1,
                "conditions": [
                    _condition("FailureTarget", "True", reason, messages.get(reason, reason)),
                    _condition("Failed", "True", reason, messages.get(reason, reason)),
                ],
            },
        )

    # -- autopilot -------------------------------------------------------------------------------

    def autopilot(self, outcome: Callable[[Obj], Outcome], step_seconds: float = 0.05) -> None:
        """Move each new Job along a path chosen by ``outcome(job)``, one step per interval."""
        self._autopilot = outcome
        self._step = step_seconds

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _on_change(self, event_type: str, spec: Any, obj: Obj) -> None:
        if spec.key != JOBS.key or event_type == "DELETED":
            return
        meta = obj["metadata"]
        if event_type == "ADDED" and self._autopilot is not None:
            self._spawn(self._drive(meta["namespace"], meta["name"], self._autopilot(obj)))
        ttl = obj.get("spec", {}).get("ttlSecondsAfterFinished")
        if ttl is not None and self._finished(obj):
            self._spawn(self._expire(meta["namespace"], meta["name"], meta["uid"], float(ttl)))

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(self, namespace: str, name: str, outcome: Outcome) -> None:
        steps: dict[str, list[Callable[[], Any]]] = {
            "succeed": [
                lambda: self.schedule(namespace, name),
                lambda: self.run(namespace, name),
                lambda: self.succeed(namespace, name),
            ],
            "fail": [
                lambda: self.schedule(namespace, name),
                lambda: self.run(namespace, name),
                lambda: self.fail(namespace, name),
            ],
            "deadline": [
                lambda: self.schedule(namespace, name),
                lambda: self.run(namespace, name),
                lambda: self.fail(namespace, name, "DeadlineExceeded"),
            ],
            "unschedulable": [lambda: self.unschedulable(namespace, name)],
            "image-pull": [lambda: self.image_pull_error(namespace, name)],
            "hold": [lambda: self.hold(namespace, name)],
        }
        for step in steps[outcome]:
            await asyncio.sleep(self._step)
            try:
                await step()
            except ApiFailure:
                return  # the Job was deleted meanwhile

    async def _expire(self, namespace: str, name: str, uid: str, ttl: float) -> None:
        await asyncio.sleep(ttl)
        job = self.cluster.get_object(JOBS, namespace, name)
        if job is not None and job["metadata"]["uid"] == uid:
            with contextlib.suppress(ApiFailure):
                await self.cluster.delete_object(JOBS, namespace, name)

    @staticmethod
    def _finished(job: Obj) -> bool:
        return any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in job.get("status", {}).get("conditions", [])
        )

    # -- writing --------------------------------------------------------------------------------

    @staticmethod
    def _waiting(reason: str, message: str) -> Obj:
        return _container_status({"waiting": {"reason": reason, "message": message}})

    @staticmethod
    def _terminated(exit_code: int, message: str) -> Obj:
        ended = utc_iso()
        terminated: Obj = {
            "exitCode": exit_code,
            "reason": "Error",
            "startedAt": ended,
            "finishedAt": ended,
        }
        if message:
            terminated["message"] = message
        return _container_status({"terminated": terminated})

    async def _ensure_pod(self, namespace: str, job_name: str) -> str:
        existing = self.pods(namespace, job_name)
        if existing:
            return str(existing[0]["metadata"]["name"])
        job = self.job(namespace, job_name)
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.get("metadata", {})
        labels = dict(meta.get("labels") or {})
        labels[JOB_NAME_LABEL] = job_name
        labels[CONTROLLER_UID_LABEL] = job["metadata"]["uid"]
        pod = {
            "metadata": {
                "generateName": f"{job_name}-",
                "namespace": namespace,
                "labels": labels,
                "annotations": {**(meta.get("annotations") or {}), SIMULATED_ANNOTATION: "true"},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job_name,
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
        created = await self.cluster.create_object(PODS, pod)
        return str(created["metadata"]["name"])

    async def _pod_status(self, namespace: str, pod: str, status: Obj) -> Obj:
        return await self.cluster.patch_object(
            PODS, namespace, pod, {"status": status}, subresource="status"
        )

    async def _job_status(self, namespace: str, name: str, status: Obj) -> Obj:
        job = self.job(namespace, name)
        if SIMULATED_ANNOTATION not in (job["metadata"].get("annotations") or {}):
            await self.cluster.patch_object(
                JOBS, namespace, name, {"metadata": {"annotations": {SIMULATED_ANNOTATION: "true"}}}
            )
        return await self.cluster.patch_object(
            JOBS, namespace, name, {"status": status}, subresource="status"
        )


def _container_status(state: Obj) -> Obj:
    """The train container's status in ``state`` (it never restarts: the Job makes a new pod)."""
    return {
        "name": "train",
        "ready": False,
        "restartCount": 0,
        "image": "",
        "imageID": "",
        "state": state,
    }
