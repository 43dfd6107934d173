"""Train pods as OCI containers under Debian's ``runc``, isolated as a pod on a cluster node.

Each pod's container runs from its image archive (``make images`` writes them to
``.tools/images/<name>.tar``), unpacked once per image digest into a cache and shared
read-only, with:

* the pod's user and group (``runAsUser``/``runAsGroup``, else the image's numeric ``USER``),
  ``fsGroup`` as a supplementary group, a read-only root file system, ``noNewPrivileges``, no
  capabilities at all, the seccomp profile of :mod:`pht_sandbox.seccomp`, and the ``/proc`` and
  ``/sys`` paths masked or read-only as runc's default spec has them;
* its volumes: each ``emptyDir`` a tmpfs of its ``sizeLimit`` (``/dev/shm`` included), each
  Secret volume its items as read-only files at the mount path, an ``/etc/hosts`` with only
  ``localhost`` and an empty ``/etc/resolv.conf`` (no DNS);
* a writable ``/dev/termination-log``: a file of the pod's own, created empty, of which the node
  agent reads at most 4096 bytes once the container ended (the pod's termination message);
* its CPU and memory limits and a pids limit through cgroups (a missing controller is reported
  once, loudly, and left out), and ``OOMKilled`` when the memory cgroup killed it;
* its own network namespace that reaches only the station API's internal listener
  (:mod:`pht_sandbox.podnetwork`).

The deadline and a cancelled run kill the container (``runc kill``, ``runc delete --force``);
its network, cgroups and bundle are removed whichever way it ended.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pht_contract.objects import Obj
from pht_sandbox import ociimages, podnetwork
from pht_sandbox.bundledtrains import image_repository
from pht_sandbox.podruntime import PodLaunch, quantity
from pht_sandbox.seccomp import default_profile

RUNC_STATE: Final = Path("/run/pht-runc")
CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
CGROUP_PARENT: Final = "pht-pods"
PIDS_LIMIT: Final = 1024
CPU_PERIOD: Final = 100_000
#: A uid/gid for a pod and image that name none (``nobody``).
NOBODY: Final = 65534
DEFAULT_EMPTYDIR: Final = 1024**3
MASKED_PATHS: Final = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS: Final = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
OOM_KILLED: Final = "OOMKilled"


def runc_problem(images_dir: Path) -> str | None:
    """Why train pods cannot run under runc here (``None`` when they can)."""
    if os.geteuid() != 0:
        return f"runc containers need root (running as uid {os.geteuid()})"
    if shutil.which("runc") is None:
        return "no 'runc' on PATH (apt-get install runc; 'make tools' installs it)"
    if not any(images_dir.glob("*.tar")):
        return f"no image archives in {images_dir} (build them with 'make images')"
    return podnetwork.problem()


def _controllers() -> dict[str, bool]:
    """Which of the cgroup controllers the limits need this machine has mounted."""
    unified = CGROUP_ROOT / "cgroup.controllers"
    if unified.exists():
        names = set(unified.read_text().split())
        return {c: c in names for c in ("memory", "cpu", "pids")}
    return {c: (CGROUP_ROOT / c / "tasks").exists() for c in ("memory", "cpu", "pids")}


def _image_index(images_dir: Path) -> dict[str, Path]:
    """Image repository → archive, from each archive's reference annotation."""
    found: dict[str, Path] = {}
    for archive in sorted(images_dir.glob("*.tar")):
        with contextlib.suppress(ociimages.ImageError, OSError, KeyError, ValueError):
            reference = ociimages.read_reference(archive)
            if reference:
                found[image_repository(reference)] = archive
    return found


@dataclass
class RuncRuntime:
    """Runs pods whose image has an archive in ``images_dir``; see the module's description."""

    images_dir: Path
    cache_dir: Path
    #: The station API's internal listener: the one address and port pods may reach.
    api_address: str = podnetwork.LISTENER_ADDRESS
    api_port: int = 0
    say: Callable[[str], None] = print
    pids_limit: int = PIDS_LIMIT
    isolation: str = (
        "train pods run as OCI containers under runc: their own network namespace that "
        "reaches only the station API's internal listener, the image's root file system "
        "read-only, no capabilities, a seccomp filter, cgroup CPU, memory and pids limits"
    )
    #: Pods see their volumes at their mount paths, not as folders of this machine.
    local_paths: bool = False
    _index: dict[str, Path] | None = None
    _controllers: dict[str, bool] = field(default_factory=dict)

    def archive(self, image: str) -> Path | None:
        if self._index is None:
            self._index = _image_index(self.images_dir)
        return self._index.get(image_repository(image))

    def image_available(self, image: str) -> bool:
        return self.archive(image) is not None

    def _cgroup_controllers(self) -> dict[str, bool]:
        if not self._controllers:
            self._controllers = _controllers()
            missing = [name for name, present in self._controllers.items() if not present]
            if missing:
                self.say(
                    f"!!! runc runtime: cgroup controller(s) {', '.join(missing)} not mounted "
                    f"under {CGROUP_ROOT}: pods run WITHOUT their {', '.join(missing)} limit !!!"
                )
        return self._controllers

    async def run(self, launch: PodLaunch) -> int | None:
        if self.api_port <= 0:
            raise RuntimeError("the runc runtime does not know the station API's port yet")
        archive = self.archive(launch.image)
        if archive is None:
            raise RuntimeError(f"no image archive for {launch.image}")
        image = await asyncio.to_thread(ociimages.unpacked, archive, self.cache_dir)
        pod_id = secrets.token_hex(5)
        container_id = f"pht-{pod_id}"
        bundle = launch.run_dir / "bundle"
        network: podnetwork.PodNetwork | None = None
        log = launch.log.open("wb")
        try:
            network = await _created_network(pod_id, self.api_address, self.api_port)
            spec = container_spec(
                launch, image, bundle, network, self._cgroup_controllers(), self.pids_limit
            )
            (bundle / "config.json").write_text(json.dumps(spec))
            process = await asyncio.create_subprocess_exec(
                "runc",
                "--root",
                str(RUNC_STATE),
                "run",
                "--keep",
                "--bundle",
                str(bundle),
                container_id,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                code = await asyncio.wait_for(process.wait(), launch.timeout)
            except TimeoutError:
                await _runc("kill", container_id, "KILL")
                await process.wait()
                return None
            except asyncio.CancelledError:
                await _runc("kill", container_id, "KILL")
                with contextlib.suppress(Exception):
                    await process.wait()
                raise
            if _oom_killed(container_id):
                launch.notes.append(OOM_KILLED)
            return code
        finally:
            # Blocking on purpose: a clean-up that awaited could itself be cancelled (the agent
            # stopping, the event loop closing) and leave the pod's network behind.
            log.close()
            _runc_now("delete", "--force", container_id)
            if network is not None:
                podnetwork.remove(network)
            shutil.rmtree(bundle, ignore_errors=True)


async def _created_network(pod_id: str, address: str, port: int) -> podnetwork.PodNetwork:
    """The pod's network, made in a worker thread. A cancelled caller still waits for the
    thread and takes the network down, so that a pod deleted while its network is being
    made leaves no namespace, veth or nftables table behind."""
    making = asyncio.ensure_future(asyncio.to_thread(podnetwork.create, pod_id, address, port))
    try:
        return await asyncio.shield(making)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            made = await making
            await asyncio.to_thread(podnetwork.remove, made)
        raise


def _runc_now(*args: str) -> None:
    """``runc`` with ``args``, waited for in this thread (for clean-up that must finish)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["runc", "--root", str(RUNC_STATE), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )


async def _runc(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "runc",
        "--root",
        str(RUNC_STATE),
        *args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await process.wait()


def _oom_killed(container_id: str) -> bool:
    """Whether the memory cgroup killed a process of the (stopped, kept) container."""
    control = CGROUP_ROOT / "memory" / CGROUP_PARENT / container_id / "memory.oom_control"
    with contextlib.suppress(OSError, ValueError):
        for line in control.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
    events = CGROUP_ROOT / CGROUP_PARENT / container_id / "memory.events"
    with contextlib.suppress(OSError, ValueError):
        for line in events.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value) > 0
    return False


def run_as(pod_spec: Obj, container: Obj, image: ociimages.Image) -> tuple[int, int]:
    """(uid, gid): the container's securityContext, else the pod's, else the image's USER."""
    pod_context = pod_spec.get("securityContext") or {}
    own = container.get("securityContext") or {}
    from_image = ociimages.user_ids(image) or (NOBODY, NOBODY)
    uid = own.get("runAsUser", pod_context.get("runAsUser", from_image[0]))
    gid = own.get("runAsGroup", pod_context.get("runAsGroup", from_image[1]))
    return int(uid), int(gid)


def process_args(container: Obj, image: ociimages.Image) -> list[str]:
    """What the container runs, as a kubelet decides: ``command`` replaces the image's
    entrypoint and ``args`` its ``Cmd``."""
    settings = image.runtime
    if container.get("command"):
        return [*container["command"], *(container.get("args") or [])]
    args = container.get("args") or settings.get("Cmd") or []
    return [*(settings.get("Entrypoint") or []), *args]


def environment(container: Obj, image: ociimages.Image) -> list[str]:
    """The image's environment with the container's values on top, as ``KEY=value``."""
    env: dict[str, str] = {}
    for item in image.runtime.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    for item in container.get("env") or []:
        env[item["name"]] = str(item.get("value", ""))
    return [f"{key}={value}" for key, value in env.items()]


def _bytes(value: str | None, default: int) -> int:
    return int(quantity(value)) or default


def volume_mounts(launch: PodLaunch, bundle: Path, uid: int, gid: int, group: int) -> list[Obj]:
    """The pod's volumes as OCI mounts; Secret items written under ``bundle`` first."""
    volumes = {v["name"]: v for v in launch.pod_spec.get("volumes", [])}
    mounts: list[Obj] = []
    for mount in launch.container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        target = mount["mountPath"]
        if "secret" in volume:
            source = volume["secret"]
            data = launch.secrets.get(source["secretName"], {})
            folder = bundle / "volumes" / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            mode = int(source.get("defaultMode", 0o440)) & 0o440
            for item in source.get("items") or [{"key": k, "path": k} for k in data]:
                path = folder / item["path"]
                path.write_bytes(base64.b64decode(data.get(item["key"], "")))
                os.chown(path, uid, group)
                path.chmod(mode or 0o400)
            os.chown(folder, uid, group)
            folder.chmod(0o550)
            options = ["rbind", "ro", "nosuid", "nodev", "noexec"]
            mounts.append(
                {"destination": target, "type": "bind", "source": str(folder), "options": options}
            )
        elif "emptyDir" in volume:
            size = _bytes(volume["emptyDir"].get("sizeLimit"), DEFAULT_EMPTYDIR)
            if target == "/dev/shm":
                options = ["nosuid", "nodev", "noexec", "mode=1777", f"size={size}"]
            else:
                options = [
                    "nosuid",
                    "nodev",
                    "mode=0770",
                    f"uid={uid}",
                    f"gid={group}",
                    f"size={size}",
                ]
            mounts.append(
                {"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options}
            )
    return mounts


def container_spec(
    launch: PodLaunch,
    image: ociimages.UnpackedImage,
    bundle: Path,
    network: podnetwork.PodNetwork,
    controllers: dict[str, bool],
    pids_limit: int = PIDS_LIMIT,
) -> Obj:
    """The runc ``config.json`` for the pod's container (writes its files under ``bundle``)."""
    bundle.mkdir(parents=True, exist_ok=True)
    uid, gid = run_as(launch.pod_spec, launch.container, image.image)
    fs_group = (launch.pod_spec.get("securityContext") or {}).get("fsGroup")
    group = int(fs_group) if fs_group is not None else gid
    hosts = bundle / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    resolv = bundle / "resolv.conf"
    resolv.write_text("")
    hostname = bundle / "hostname"
    hostname.write_text(launch.name + "\n")
    for path in (hosts, resolv, hostname):
        path.chmod(0o444)
    small_tmpfs = ["nosuid", "strictatime", "mode=755", "size=65536k"]
    file_options = ["rbind", "ro", "nosuid", "nodev", "noexec"]
    mounts: list[Obj] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": small_tmpfs},
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/etc/hosts",
            "type": "bind",
            "source": str(hosts),
            "options": file_options,
        },
        {
            "destination": "/etc/resolv.conf",
            "type": "bind",
            "source": str(resolv),
            "options": file_options,
        },
        {
            "destination": "/etc/hostname",
            "type": "bind",
            "source": str(hostname),
            "options": file_options,
        },
    ]
    termination = launch.termination_log
    termination.write_bytes(b"")
    os.chown(termination, uid, group)
    termination.chmod(0o600)
    mounts.append(
        {
            "destination": "/dev/termination-log",
            "type": "bind",
            "source": str(termination),
            "options": ["rbind", "rw", "nosuid", "nodev", "noexec"],
        }
    )
    volumes = volume_mounts(launch, bundle, uid, gid, group)
    if not any(m["destination"] == "/dev/shm" for m in volumes):
        volumes.append(
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            }
        )
    limits = (launch.container.get("resources") or {}).get("limits") or {}
    resources: Obj = {"devices": [{"allow": False, "access": "rwm"}]}
    memory = int(quantity(limits.get("memory")))
    if memory and controllers.get("memory"):
        resources["memory"] = {"limit": memory}
    cpus = quantity(limits.get("cpu"))
    if cpus and controllers.get("cpu"):
        resources["cpu"] = {"quota": max(1000, int(cpus * CPU_PERIOD)), "period": CPU_PERIOD}
    if controllers.get("pids"):
        resources["pids"] = {"limit": pids_limit}
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": sorted({group} - {gid})},
            "args": process_args(launch.container, image.image),
            "env": environment(launch.container, image.image),
            "cwd": image.image.runtime.get("WorkingDir") or "/",
            "capabilities": {
                key: [] for key in ("bounding", "effective", "inheritable", "permitted", "ambient")
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(image.rootfs), "readonly": True},
        "hostname": launch.name[:63],
        "mounts": mounts + volumes,
        "linux": {
            "resources": resources,
            "cgroupsPath": f"/{CGROUP_PARENT}/pht-{network.pod_id}",
            "namespaces": [
                {"type": "pid"},
                {"type": "network", "path": str(network.namespace_path)},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"},
            ],
            "seccomp": default_profile(),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
