"""Job pods as local processes: the kubelet of the station in a box, for bundled trains.

For the station in a box only. When the operator creates a Job in the emulated cluster, the
kubelet starts the train's entrypoint as a **local process** with the contract a pod gets: the
same environment variables, the token and queries from the run's Secret as files, a scratch
directory for HOME/TMPDIR, the memory limit as an address-space limit, the CPU time the
deadline allows, and ``activeDeadlineSeconds`` as a wall-clock deadline. It reports Pod and Job
status back through the simulated Job controller, so the operator follows a run exactly as it
would on a cluster. Any other image fails like an unpullable image (``ErrImagePull``).

A local process is **not isolated the way a pod is**: it shares this machine's network, file
system and user. The demo says so; never point it at real patient data.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pht_contract.objects import Obj
from pht_sandbox.bundledtrains import BundledTrain, bundled_trains, image_repository
from pht_sandbox.emulator import JOBS, SECRETS, ApiFailure, ClusterEmulator
from pht_sandbox.jobcontroller import JobController
from pht_sandbox.podruntime import (
    PodLaunch,
    PodRuntime,
    ProcessRuntime,
    exit_reason,
    pod_environment,
    secret_names,
    termination_message,
)


class ProcessKubelet:
    """Runs bundled trains for Jobs in the run namespace; fails other images like a pull error."""

    def __init__(
        self,
        cluster: ClusterEmulator,
        namespace: str,
        work_dir: Path,
        runtime: PodRuntime | None = None,
    ) -> None:
        self.cluster = cluster
        self.runtime = runtime or ProcessRuntime()
        self.namespace = namespace
        self.work_dir = work_dir.resolve()
        self.jobs = JobController(cluster)
        self.trains = bundled_trains()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        cluster.add_listener(self._on_change)

    def _on_change(self, event_type: str, spec: Any, obj: Obj) -> None:
        if spec.key != JOBS.key or obj["metadata"].get("namespace") != self.namespace:
            return
        name = obj["metadata"]["name"]
        if event_type == "ADDED" and name not in self._tasks:
            with contextlib.suppress(RuntimeError):
                task = asyncio.get_running_loop().create_task(self._run_job(name))
                self._tasks[name] = task
                task.add_done_callback(self._forget)
        elif event_type == "DELETED" and name in self._tasks:
            self._tasks[name].cancel()

    def _forget(self, task: asyncio.Task[None]) -> None:
        for name, known in list(self._tasks.items()):
            if known is task:
                del self._tasks[name]

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.jobs.stop()

    async def _run_job(self, name: str) -> None:
        try:
            await self._run(name)
        except ApiFailure:
            return  # the Job was deleted while we ran it

    async def _run(self, name: str) -> None:
        job = self.jobs.job(self.namespace, name)
        if job["spec"].get("suspend"):
            await self.jobs.hold(self.namespace, name)
            return
        pod_spec = job["spec"]["template"]["spec"]
        container = pod_spec["containers"][0]
        train = self.trains.get(image_repository(container["image"]))
        await asyncio.sleep(0.05)
        if train is None:
            await self.jobs.image_pull_error(self.namespace, name)
            return
        await self.jobs.schedule(self.namespace, name)
        deadline = float(job["spec"].get("activeDeadlineSeconds") or 3600)
        attempts = int(job["spec"].get("backoffLimit") or 0) + 1
        run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.work_dir))
        try:
            env = self._environment(pod_spec, run_dir, train)
            await self.jobs.run(self.namespace, name)
            loop = asyncio.get_running_loop()
            started = loop.time()
            last: tuple[int, str] | None = None  # the last attempt's exit code and message
            for _attempt in range(attempts):
                remaining = deadline - (loop.time() - started)
                if remaining <= 0:
                    break
                launch = PodLaunch(train, container, env, run_dir, remaining)
                code = await self.runtime.run(launch)
                if code == 0:
                    await self.jobs.succeed(self.namespace, name)
                    return
                if code is None:
                    break  # deadline
                last = (exit_reason(code)[0], termination_message(launch))
            if loop.time() - started >= deadline or last is None:
                await self.jobs.fail(self.namespace, name, "DeadlineExceeded")
            else:
                exit_code, message = last
                await self.jobs.fail(
                    self.namespace,
                    name,
                    "BackoffLimitExceeded",
                    exit_code=exit_code,
                    message=message,
                )
        finally:
            # The algorithm's output stays with the station (never shown to researchers).
            log = run_dir / "train.log"
            if log.exists():
                shutil.copy(log, self.work_dir / f"{name}.log")
            shutil.rmtree(run_dir, ignore_errors=True)

    def _environment(self, pod_spec: Obj, run_dir: Path, train: BundledTrain) -> dict[str, str]:
        secrets: dict[str, dict[str, str]] = {}
        for name in secret_names(pod_spec):
            secret = self.cluster.get_object(SECRETS, self.namespace, name)
            if secret is None:
                raise ApiFailure(404, "NotFound", "the run's Secret is missing")
            secrets[name] = secret.get("data") or {}
        return pod_environment(pod_spec, secrets, run_dir, train)
