"""How a train pod's container is started on this machine: the runtime behind both kubelets.

The station in a box's kubelet (:mod:`pht_sandbox.processpods`, emulated cluster) and the node
agent (:mod:`pht_sandbox.nodeagent`, real API server) hand a :class:`PodLaunch` to a
:class:`PodRuntime` and get an exit code back. The simplest runtime, :class:`ProcessRuntime`,
runs a bundled example train as a **local process without container isolation**: it shares
this machine's network, file system and user. :class:`pht_sandbox.runcruntime.RuncRuntime`
runs the pod's image as an isolated OCI container under runc instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import resource
import signal
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from pht_contract.objects import Obj
from pht_contract.quantities import QuantityError, parse_quantity
from pht_contract.trainfailures import FAILURE_LINE_PREFIX, TERMINATION_MESSAGE_MAX_BYTES
from pht_sandbox.bundledtrains import SDK_DIR, BundledTrain, bundled_trains, image_repository

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


def secret_names(pod_spec: Obj) -> list[str]:
    """The Secrets the pod mounts as volumes."""
    return [v["secret"]["secretName"] for v in pod_spec.get("volumes", []) if "secret" in v]


@dataclass(frozen=True)
class PodLaunch:
    """One container of one pod, ready to start: what it runs and with which limits."""

    #: The bundled train a local process runs (``None`` for a runtime that runs images).
    train: BundledTrain | None
    container: Obj
    env: dict[str, str]
    run_dir: Path
    #: Seconds until the deadline kills it.
    timeout: float
    #: The whole pod spec (volumes, securityContext) and the Secrets it mounts (as in the API).
    pod_spec: Obj = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    name: str = "pod"
    #: What the runtime noticed about how the container ended (e.g. ``OOMKilled``).
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        return str(self.container.get("image", ""))

    @property
    def log(self) -> Path:
        return self.run_dir / "train.log"

    @property
    def termination_log(self) -> Path:
        """Where the container's termination message is kept on this machine (a runtime that
        isolates the container mounts it at ``/dev/termination-log``)."""
        return self.run_dir / "termination-log"


def termination_message(launch: PodLaunch) -> str:
    """The container's termination message as a kubelet reports it: at most
    :data:`TERMINATION_MESSAGE_MAX_BYTES` bytes of the file, as text; empty without one."""
    try:
        # Never follow a link or wait on a pipe put in its place.
        descriptor = os.open(launch.termination_log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return ""
        try:
            head = file.read(TERMINATION_MESSAGE_MAX_BYTES)
        except OSError:
            return ""
    return head.decode("utf-8", errors="replace")


def reason_from_log(log: Path) -> str:
    """The reason of a failed train from the last ``pht-train-failure: <Reason>`` line of its log
    (stdout, flushed at exit, may follow it), as Kubernetes' ``FallbackToLogsOnError`` takes a
    message from the log's tail: only the last :data:`TERMINATION_MESSAGE_MAX_BYTES` bytes are
    read. Empty without such a line."""
    try:
        with log.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - TERMINATION_MESSAGE_MAX_BYTES))
            tail = file.read(TERMINATION_MESSAGE_MAX_BYTES)
    except OSError:
        return ""
    for line in reversed(tail.decode("utf-8", errors="replace").splitlines()):
        if line.startswith(FAILURE_LINE_PREFIX):
            return line[len(FAILURE_LINE_PREFIX) :]
    return ""


class PodRuntime(Protocol):
    """Starts a container and waits for it."""

    #: One line for the operator of this machine: how isolated a pod is.
    isolation: str
    #: True when the pod sees its volumes as folders of this machine (environment values that
    #: point into a mount are rewritten to them, :func:`pod_environment`).
    local_paths: bool

    def image_available(self, image: str) -> bool:
        """Whether this runtime can run ``image`` (else the pod waits as ErrImagePull)."""
        ...

    async def run(self, launch: PodLaunch) -> int | None:
        """The container's exit code, or ``None`` when the deadline killed it.

        Cancelling the call kills the container.
        """
        ...


class ProcessRuntime:
    """A bundled train as a local process: memory limit as an address-space limit, CPU time
    as the deadline allows, its own session so that the whole process group is killed."""

    isolation = (
        "train pods run as LOCAL PROCESSES WITHOUT CONTAINER ISOLATION: they share this "
        "machine's network, file system and user"
    )
    local_paths = True

    def image_available(self, image: str) -> bool:
        return image_repository(image) in bundled_trains()

    async def run(self, launch: PodLaunch) -> int | None:
        if launch.train is None:
            raise ValueError(f"{launch.image}: not a bundled train, a local process cannot run it")
        limits = launch.container.get("resources", {}).get("limits", {})
        memory = quantity(limits.get("memory"))
        cpus = max(1.0, quantity(limits.get("cpu")) or 1.0)
        cpu_seconds = int(launch.timeout * cpus) + 1
        command = [sys.executable, "-m", launch.train.module, *launch.container.get("args", [])]
        log = launch.log.open("wb")

        def limit() -> None:  # runs in the child before exec
            if memory:
                cap = int(memory) + ADDRESS_SPACE_HEADROOM
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            os.setsid()

        process = await asyncio.create_subprocess_exec(
            *command,
            env=launch.env,
            cwd=str(launch.env.get("HOME", launch.run_dir)),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=limit,  # resource limits must be set in the child, before exec
        )
        try:
            code = await asyncio.wait_for(process.wait(), launch.timeout)
        except TimeoutError:
            kill_group(process.pid)
            await process.wait()
            return None
        except asyncio.CancelledError:
            kill_group(process.pid)
            with contextlib.suppress(Exception):
                await process.wait()
            raise
        finally:
            log.close()
        if code != 0:
            # A local process cannot write /dev/termination-log: its log's last line stands in.
            _write_new(launch.termination_log, reason_from_log(launch.log))
        return code


def _write_new(path: Path, text: str) -> None:
    """``text`` in a new regular file at ``path``, whatever was there (never through a link)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def exit_reason(code: int) -> tuple[int, str]:
    """A process's return code as a kubelet reports a container's: (exit code, reason)."""
    if code < 0:  # killed by a signal
        return 128 - code, "Error"
    return code, "Completed" if code == 0 else "Error"


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def quantity(value: str | None) -> float:
    """A Kubernetes quantity as a number; 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        return float(parse_quantity(value))
    except QuantityError:
        return 0.0
