"""A node agent for one node of a real API server: a small kubelet that runs train pods here.

kwok nodes move pods through their phases but run nothing. This agent registers one Node,
keeps its Lease fresh so the node lifecycle controller sees it alive, watches the pods the
real scheduler binds to it, starts each pod's container through a :class:`PodRuntime` (the
pod's environment, the mounted Secrets as files, its command) and writes the pod's status the
way a kubelet does: ``Running``, then ``Succeeded`` or ``Failed`` with the container's exit
code and reason. The real Job controller turns that into the Job's outcome. A pod deleted
while it runs is killed, marked failed and its deletion confirmed (``gracePeriodSeconds=0``).

The runtime decides the isolation and which images it can run; the agent says it loudly when
it starts. :func:`choose_runtime` picks :class:`~pht_sandbox.runcruntime.RuncRuntime` (each pod
an isolated OCI container from its image archive) where this machine allows it and otherwise
falls back to :class:`~pht_sandbox.podruntime.ProcessRuntime` (bundled trains as local
processes), saying exactly why. Images the runtime cannot run stay ``Pending`` with
``ErrImagePull``, as a kubelet leaves an image it cannot pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from pht_contract.objects import Obj
from pht_contract.times import utc_iso, utc_now
from pht_sandbox.bundledtrains import BundledTrain, bundled_trains, image_repository
from pht_sandbox.podruntime import (
    PodLaunch,
    PodRuntime,
    ProcessRuntime,
    exit_reason,
    pod_environment,
    termination_message,
)
from pht_sandbox.podruntime import secret_names as mounted_secrets
from pht_sandbox.runcruntime import OOM_KILLED, RuncRuntime, runc_problem

#: Label on the agent's Node: which runtime runs its pods.
RUNTIME_LABEL: Final = "pht.health-ai.nl/node-agent-runtime"
LEASE_NAMESPACE: Final = "kube-node-lease"
LEASE_SECONDS: Final = 40
HEARTBEAT_SECONDS: Final = 10.0
#: A pod without ``activeDeadlineSeconds`` (the Job's deadline is the Job controller's).
NO_POD_DEADLINE_SECONDS: Final = 7 * 24 * 3600.0
#: Exit code a kubelet reports for a container it killed (128 + SIGKILL).
KILLED_EXIT_CODE: Final = 137
#: Exit code a kubelet reports for a container its runtime could not start.
START_ERROR_EXIT_CODE: Final = 128
#: Seconds a pod waits for the Secrets it mounts before it is reported waiting.
SECRET_RETRIES: Final = 30
MERGE: Final = {"Content-Type": "application/merge-patch+json"}
#: What ``choose_runtime`` may be asked for.
RUNTIME_CHOICES: Final = ("auto", "runc", "process")


class RuntimeUnavailable(RuntimeError):
    """The runtime asked for cannot run pods on this machine (the reason is the message)."""


def choose_runtime(
    choice: str, images_dir: Path, cache_dir: Path, say: Callable[[str], None] = print
) -> tuple[PodRuntime, str]:
    """The pod runtime and its name: ``runc`` where it works here, else (``auto``) local
    processes with a loud line saying why; ``runc`` asked for but impossible raises
    :class:`RuntimeUnavailable` with the reason."""
    if choice not in RUNTIME_CHOICES:
        raise RuntimeUnavailable(
            f"unknown runtime {choice!r} (one of {', '.join(RUNTIME_CHOICES)})"
        )
    if choice == "process":
        return ProcessRuntime(), "process"
    problem = runc_problem(images_dir)
    if problem is None:
        return RuncRuntime(images_dir, cache_dir, say=say), "runc"
    if choice == "runc":
        raise RuntimeUnavailable(f"train pods cannot run under runc here: {problem}")
    say(
        f"!!! train pods cannot run as isolated runc containers here: {problem}; "
        "FALLING BACK TO LOCAL PROCESSES WITHOUT ISOLATION !!!"
    )
    return ProcessRuntime(), "process"


@dataclass(frozen=True)
class NodeCapacity:
    """What the Node advertises to the scheduler (pods that fit are bound to it)."""

    cpu: str = "8"
    memory: str = "32Gi"
    pods: str = "20"
    ephemeral_storage: str = "50Gi"

    def as_resources(self) -> dict[str, str]:
        return {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            "ephemeral-storage": self.ephemeral_storage,
        }


def node_object(name: str, runtime_name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                RUNTIME_LABEL: runtime_name,
            },
        },
        "spec": {},
    }


def node_status(capacity: NodeCapacity) -> Obj:
    now = utc_iso()

    def condition(kind: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": capacity.as_resources(),
        "allocatable": capacity.as_resources(),
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "agent"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "agent"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "agent"),
            condition("Ready", "True", "KubeletReady", "the node agent is running"),
        ],
    }


def _pod_conditions(ready: bool) -> list[Obj]:
    now = utc_iso()
    value = "True" if ready else "False"
    return [
        {"type": kind, "status": status, "lastTransitionTime": now}
        for kind, status in (
            ("PodScheduled", "True"),
            ("Initialized", "True"),
            ("ContainersReady", value),
            ("Ready", value),
        )
    ]


def waiting_status(pod: Obj, reason: str, message: str) -> Obj:
    """A pod whose container cannot start (yet): Pending, the container waiting."""
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Pending",
        "hostIP": "127.0.0.1",
        "conditions": _pod_conditions(False),
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ],
    }


def running_status(pod: Obj, started_at: str, runtime_name: str = "process") -> Obj:
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": started_at,
        "conditions": _pod_conditions(True),
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": container["image"],
                "containerID": f"{runtime_name}://{pod['metadata']['uid']}",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": started_at}},
            }
        ],
    }


def terminated_status(
    pod: Obj,
    started_at: str,
    exit_code: int,
    reason: str,
    pod_reason: str = "",
    message: str = "",
    runtime_name: str = "process",
) -> Obj:
    """The pod after its container ended: Succeeded on exit code 0, Failed otherwise."""
    status = running_status(pod, started_at, runtime_name)
    status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    status["conditions"] = _pod_conditions(False)
    (container,) = status["containerStatuses"]
    container.update(ready=False, started=False)
    container["state"] = {
        "terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": utc_iso(),
            "containerID": container["containerID"],
            **({"message": message} if message else {}),
        }
    }
    if pod_reason:
        status["reason"] = pod_reason
        status["message"] = message
    return status


@dataclass
class NodeAgent:
    """Start with :meth:`start`, stop with :meth:`stop` (kills the pods it runs)."""

    api: httpx.AsyncClient
    node_name: str
    work_dir: Path
    runtime: PodRuntime = field(default_factory=ProcessRuntime)
    capacity: NodeCapacity = field(default_factory=NodeCapacity)
    runtime_name: str = "process"
    say: Callable[[str], None] = print
    #: Image repository → the train package this node runs for it (the example trains; an
    #: author adds their own train here to try it on the station before building an image).
    trains: dict[str, BundledTrain] = field(default_factory=bundled_trains)
    _pods: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _started: set[str] = field(default_factory=set)
    _deleting: set[str] = field(default_factory=set)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self.say(f"!!! node agent {self.node_name}: {self.runtime.isolation.upper()} !!!")
        self.work_dir = self.work_dir.resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        await self._register()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat()), loop.create_task(self._watch())]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._pods.values()]:
            task.cancel()
        for task in [*self._tasks, *self._pods.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._pods.clear()

    # -- the node -------------------------------------------------------------------------------

    async def _register(self) -> None:
        made = await self.api.post(
            "/api/v1/nodes", json=node_object(self.node_name, self.runtime_name)
        )
        if made.status_code not in (201, 409):
            raise RuntimeError(f"registering node {self.node_name}: HTTP {made.status_code}")
        await self._report_node()
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": _micro_time(),
            },
        }
        made = await self.api.post(
            f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", json=lease
        )
        if made.status_code not in (201, 409):
            raise RuntimeError(f"creating the node's Lease: HTTP {made.status_code}")

    async def _report_node(self) -> None:
        answer = await self.api.patch(
            f"/api/v1/nodes/{self.node_name}/status",
            content=json.dumps({"status": node_status(self.capacity)}),
            headers=MERGE,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"node {self.node_name} status: HTTP {answer.status_code}")

    async def _heartbeat(self) -> None:
        lease = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{self.node_name}"
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                await self.api.patch(
                    lease,
                    content=json.dumps({"spec": {"renewTime": _micro_time()}}),
                    headers=MERGE,
                )
                await self._report_node()

    # -- its pods -------------------------------------------------------------------------------

    async def _watch(self) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.node_name}"}
        while True:
            try:
                listing = await self.api.get("/api/v1/pods", params=selector)
                listing.raise_for_status()
                body = listing.json()
                for pod in body.get("items", []):
                    self._seen("MODIFIED", pod)
                params = {
                    **selector,
                    "watch": "true",
                    "resourceVersion": body["metadata"]["resourceVersion"],
                    "timeoutSeconds": "60",
                }
                timeout = httpx.Timeout(10.0, read=90.0)
                async with self.api.stream(
                    "GET", "/api/v1/pods", params=params, timeout=timeout
                ) as stream:
                    async for line in stream.aiter_lines():
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        if event.get("type") == "ERROR":
                            break
                        self._seen(event["type"], event["object"])
            except (httpx.HTTPError, ValueError, KeyError):
                await asyncio.sleep(1.0)

    def _seen(self, event_type: str, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        running = self._pods.get(uid)
        if event_type == "DELETED":
            if running is not None:
                running.cancel()
            return
        if meta.get("deletionTimestamp"):
            if running is not None and not running.done():
                running.cancel()
            if uid not in self._deleting:
                self._deleting.add(uid)
                self._spawn(uid + "/delete", self._confirm_deletion(pod, running))
            return
        phase = (pod.get("status") or {}).get("phase")
        if uid not in self._started and phase not in ("Succeeded", "Failed"):
            self._started.add(uid)
            self._spawn(uid, self._run_pod(pod))

    def _spawn(self, key: str, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pods[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._pods.get(key) is done:
                del self._pods[key]

        task.add_done_callback(forget)

    def _pod_url(self, pod: Obj) -> str:
        meta = pod["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"

    async def _write_status(self, pod: Obj, status: Obj) -> None:
        answer = await self.api.patch(
            f"{self._pod_url(pod)}/status",
            content=json.dumps({"status": status}),
            headers=MERGE,
        )
        if answer.status_code not in (200, 404):
            raise RuntimeError(f"pod status: HTTP {answer.status_code} {answer.text[:200]}")

    async def _secrets(self, pod: Obj) -> dict[str, dict[str, str]] | None:
        found: dict[str, dict[str, str]] = {}
        namespace = pod["metadata"]["namespace"]
        for name in mounted_secrets(pod["spec"]):
            answer = await self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
            if answer.status_code != 200:
                return None
            found[name] = answer.json().get("data") or {}
        return found

    async def _run_pod(self, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        train = self.trains.get(image_repository(container["image"]))
        available = (
            train is not None
            if self.runtime.local_paths
            else self.runtime.image_available(container["image"])
        )
        if not available:
            what = "example trains" if self.runtime.local_paths else "image archives"
            message = (
                f'image "{container["image"]}" is not one of the {what} this node '
                f"agent runs ({self.runtime_name} runtime)"
            )
            await self._write_status(pod, waiting_status(pod, "ErrImagePull", message))
            return
        secrets = await self._secrets(pod)
        for _retry in range(SECRET_RETRIES):
            if secrets is not None:
                break
            await asyncio.sleep(1.0)
            secrets = await self._secrets(pod)
        if secrets is None:
            message = "a Secret the pod mounts is missing"
            await self._write_status(
                pod, waiting_status(pod, "CreateContainerConfigError", message)
            )
            return
        started_at = utc_iso()
        run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.work_dir))
        try:
            env: dict[str, str] = {}
            if self.runtime.local_paths and train is not None:
                env = pod_environment(pod["spec"], secrets, run_dir, train)
            await self._write_status(pod, running_status(pod, started_at, self.runtime_name))
            deadline = float(pod["spec"].get("activeDeadlineSeconds") or NO_POD_DEADLINE_SECONDS)
            launch = PodLaunch(train, container, env, run_dir, deadline, pod["spec"], secrets, name)
            try:
                code = await self.runtime.run(launch)
            except (OSError, RuntimeError, ValueError) as exc:
                # As a kubelet reports a container its runtime could not start.
                message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                await self._write_status(
                    pod,
                    terminated_status(
                        pod,
                        started_at,
                        START_ERROR_EXIT_CODE,
                        "StartError",
                        message=message,
                        runtime_name=self.runtime_name,
                    ),
                )
                return
            if code is None:
                status = terminated_status(
                    pod,
                    started_at,
                    KILLED_EXIT_CODE,
                    "Error",
                    "DeadlineExceeded",
                    "Pod was active on the node longer than the specified deadline",
                    self.runtime_name,
                )
            else:
                exit_code, reason = exit_reason(code)
                if OOM_KILLED in launch.notes:
                    reason = OOM_KILLED
                status = terminated_status(
                    pod,
                    started_at,
                    exit_code,
                    reason,
                    message=termination_message(launch),
                    runtime_name=self.runtime_name,
                )
            await self._write_status(pod, status)
        finally:
            # The algorithm's output stays with the station (never shown to researchers).
            log = run_dir / "train.log"
            if log.exists():
                shutil.copy(log, self.work_dir / f"{name}.log")
            shutil.rmtree(run_dir, ignore_errors=True)

    async def _confirm_deletion(self, pod: Obj, running: asyncio.Task[None] | None) -> None:
        """A pod being deleted: stop its container, record how it ended, let it go."""
        if running is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed") and running is not None:
            started_at = (pod.get("status") or {}).get("startTime") or utc_iso()
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                await self._write_status(
                    pod,
                    terminated_status(
                        pod, started_at, KILLED_EXIT_CODE, "Error", runtime_name=self.runtime_name
                    ),
                )
        with contextlib.suppress(httpx.HTTPError):
            await self.api.request(
                "DELETE",
                self._pod_url(pod),
                json={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": pod["metadata"]["uid"]},
                },
            )


def _micro_time() -> str:
    """Now as a Lease's MicroTime (RFC 3339 with microseconds)."""
    return utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def machine_capacity() -> NodeCapacity:
    """This machine's CPUs (at least 4, so a train's request fits on a small laptop)."""
    return NodeCapacity(cpu=str(max(os.cpu_count() or 1, 4)))
