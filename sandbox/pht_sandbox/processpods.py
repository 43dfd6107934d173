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
import base64
import contextlib
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from pht_contract.quantities import QuantityError, parse_quantity
from pht_sandbox.bundledtrains import SDK_DIR, BundledTrain, bundled_trains, image_repository
from pht_sandbox.emulator import JOBS, SECRETS, ApiFailure, ClusterEmulator
from pht_sandbox.jobcontroller import JobController

Obj = dict[str, Any]

#: Address space beyond the memory limit: interpreters reserve far more than they touch.
ADDRESS_SPACE_HEADROOM: Final = 2 * 1024**3


def pod_environment(
    pod_spec: Obj, secrets: dict[str, dict[str, str]], run_dir: Path, train: BundledTrain
) -> dict[str, str]:
    """The pod's environment for a local process, each mount path mapped to a local folder.

    Secret volumes (token, named queries) become read-only files; other volumes (scratch) empty
    folders; environment values that point into a mount point into its folder instead.
    """
    container = pod_spec["containers"][0]
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        local = run_dir / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        source = volumes.get(mount["name"], {}).get("secret")
        if source is not None:
            data = secrets[source["secretName"]]
            for item in source.get("items") or [{"key": k, "path": k} for k in data]:
                path = local / item["path"]
                path.write_bytes(base64.b64decode(data[item["key"]]))
                path.chmod(0o400)
        mounts[mount["mountPath"]] = local
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(train.directory), str(SDK_DIR)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    for item in container.get("env", []):
        value = str(item.get("value", ""))
        for path in sorted(mounts, key=len, reverse=True):
            if value == path or value.startswith(path + "/"):
                value = str(mounts[path]) + value[len(path) :]
                break
        env[item["name"]] = value
    return env


class ProcessKubelet:
    """Runs bundled trains for Jobs in the run namespace; fails other images like a pull error."""

    def __init__(self, cluster: ClusterEmulator, namespace: str, work_dir: Path) -> None:
        self.cluster = cluster
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
            for _attempt in range(attempts):
                remaining = deadline - (loop.time() - started)
                if remaining <= 0:
                    break
                code = await self._process(train, container, env, remaining, run_dir)
                if code == 0:
                    await self.jobs.succeed(self.namespace, name)
                    return
                if code is None:
                    break  # deadline
            reason = (
                "DeadlineExceeded"
                if loop.time() - started >= deadline
                else ("BackoffLimitExceeded")
            )
            await self.jobs.fail(self.namespace, name, reason)
        finally:
            # The algorithm's output stays with the station (never shown to researchers).
            log = run_dir / "train.log"
            if log.exists():
                shutil.copy(log, self.work_dir / f"{name}.log")
            shutil.rmtree(run_dir, ignore_errors=True)

    def _environment(self, pod_spec: Obj, run_dir: Path, train: BundledTrain) -> dict[str, str]:
        secrets: dict[str, dict[str, str]] = {}
        for volume in pod_spec.get("volumes", []):
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                secret = self.cluster.get_object(SECRETS, self.namespace, name)
                if secret is None:
                    raise ApiFailure(404, "NotFound", "the run's Secret is missing")
                secrets[name] = secret.get("data") or {}
        return pod_environment(pod_spec, secrets, run_dir, train)

    async def _process(
        self,
        train: BundledTrain,
        container: Obj,
        env: dict[str, str],
        timeout: float,
        run_dir: Path,
    ) -> int | None:
        """Exit code of one attempt, or None when the deadline killed it."""
        limits = container.get("resources", {}).get("limits", {})
        memory = _bytes(limits.get("memory"))
        cpu_seconds = int(timeout * max(1.0, float(_bytes(limits.get("cpu")) or 1))) + 1
        command = [sys.executable, "-m", train.module, *container.get("args", [])]
        log = (run_dir / "train.log").open("wb")

        def limit() -> None:  # runs in the child before exec
            if memory:
                cap = int(memory) + ADDRESS_SPACE_HEADROOM
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            os.setsid()

        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            cwd=str(env.get("HOME", run_dir)),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=limit,  # resource limits must be set in the child, before exec
        )
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            _kill(process.pid)
            await process.wait()
            return None
        except asyncio.CancelledError:
            _kill(process.pid)
            with contextlib.suppress(Exception):
                await process.wait()
            raise
        finally:
            log.close()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _bytes(quantity: str | None) -> float:
    if not quantity:
        return 0.0
    try:
        return float(parse_quantity(quantity))
    except QuantityError:
        return 0.0
