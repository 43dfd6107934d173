"""Train pods as OCI containers under runc (pht_sandbox.runcruntime), started for real from the
image archives `make images` builds: who the train runs as, what it may write, which privileges
and system calls it has, its limits, and that nothing of a pod outlives it. A hostile train's
network probes: tests/sandbox/test_runcruntime_network.py. Needs root, runc, iproute2 and
nftables (`make tools`) and the images (`make images`); a missing one is an error, not a skip.
About 5 s per container on two cores (the image is unpacked once per digest and cached).
"""

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from images import probeimage

from pht_contract.objects import Obj
from pht_contract.trainfailures import TERMINATION_MESSAGE_MAX_BYTES
from pht_sandbox import podnetwork
from pht_sandbox.nodeagent import RuntimeUnavailable, choose_runtime
from pht_sandbox.podruntime import PodLaunch, ProcessRuntime, termination_message
from pht_sandbox.realstation import ROOTFS_CACHE
from pht_sandbox.runcruntime import CGROUP_PARENT, CGROUP_ROOT, OOM_KILLED, RUNC_STATE, RuncRuntime

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TRAIN_IMAGE = "ghcr.io/pht-station/trains/cohort-summary@sha256:" + "1" * 64
UID, GID, FS_GROUP = 65532, 65533, 65534
TOKEN = "not-a-real-token"
REPO = Path(__file__).resolve().parents[2]


def runtime(port: int = 9) -> RuncRuntime:
    assert os.geteuid() == 0, "runc containers need root"
    return RuncRuntime(probeimage.ARCHIVES, ROOTFS_CACHE, api_port=port, say=print)


def pod(command: list[str], memory: str = "256Mi", image: str = TRAIN_IMAGE) -> Obj:
    """A pod spec as the operator writes a run's (runobjects.build_job), smaller."""
    return {
        "securityContext": {"runAsUser": UID, "runAsGroup": GID, "fsGroup": FS_GROUP},
        "containers": [
            {
                "name": "train",
                "image": image,
                "command": command,
                "env": [
                    {"name": "HOME", "value": "/scratch"},
                    {"name": "PHT_TOKEN_FILE", "value": "/var/run/pht/token"},
                ],
                "resources": {"limits": {"cpu": "1", "memory": memory}},
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "shm", "mountPath": "/dev/shm"},
                    {"name": "token", "mountPath": "/var/run/pht", "readOnly": True},
                ],
            }
        ],
        "volumes": [
            {"name": "scratch", "emptyDir": {"sizeLimit": "16Mi"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
            {
                "name": "token",
                "secret": {
                    "secretName": "run-secret",
                    "defaultMode": 0o440,
                    "items": [{"key": "token", "path": "token"}],
                },
            },
        ],
    }


def launch(spec: Obj, run_dir: Path, timeout: float = 60.0) -> PodLaunch:
    run_dir.mkdir(parents=True, exist_ok=True)
    secret = {"token": base64.b64encode(TOKEN.encode()).decode()}
    return PodLaunch(
        None,
        spec["containers"][0],
        {},
        run_dir,
        timeout,
        pod_spec=spec,
        secrets={"run-secret": secret},
        name="run-test",
    )


def python(script: str) -> list[str]:
    return ["python", "-c", script]


def nothing_left() -> None:
    """No pod network, runc container or pod cgroup outlives a pod."""
    assert podnetwork.leftovers() == []
    listed = subprocess.run(
        ["runc", "--root", str(RUNC_STATE), "list", "-q"], capture_output=True, text=True
    )
    assert listed.stdout.strip() == ""
    for controller in ("memory", "cpu", "pids"):
        parent = CGROUP_ROOT / controller / CGROUP_PARENT
        if parent.is_dir():
            assert [p.name for p in parent.iterdir() if p.is_dir()] == []


INSIDE = r"""
import ctypes, os
print("ids", os.getuid(), os.getgid(), sorted(os.getgroups()))
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print("CapEff", status["CapEff"].strip())
print("Seccomp", status["Seccomp"].strip())
print("NoNewPrivs", status["NoNewPrivs"].strip())
for path in ("/probe", "/app/probe", "/etc/probe", "/var/run/pht/probe", "/var/run/pht/token"):
    try:
        open(path, "w").close()
        print("wrote", path)
    except OSError as error:
        print("refused", path, error.errno)
print("token", open("/var/run/pht/token").read())
open("/scratch/out", "w").write("x" * 1000)
print("scratch", os.path.getsize("/scratch/out"))
try:
    open("/scratch/big", "wb").write(b"x" * 32 * 1024 * 1024)
    print("scratch-big written")
except OSError as error:
    print("scratch-big refused", error.errno)
libc = ctypes.CDLL(None, use_errno=True)
print("unshare-user", libc.unshare(0x10000000), ctypes.get_errno())
print("unshare-net", libc.unshare(0x40000000), ctypes.get_errno())
print("mount", libc.mount(b"none", b"/scratch", b"tmpfs", 0, None), ctypes.get_errno())
points = {line.split()[4] for line in open("/proc/self/mountinfo").read().splitlines()}
masked = ("/proc/keys", "/proc/timer_list", "/proc/acpi")
print("masked", " ".join(p for p in masked if p in points))
try:
    open("/proc/sys/kernel/hostname", "w").write("x")
    print("proc-sys written")
except OSError as error:
    print("proc-sys refused", error.errno)
print("resolv", repr(open("/etc/resolv.conf").read()))
"""


def test_the_container_runs_as_the_pod_says_with_a_read_only_root_and_no_privileges(
    tmp_path: Path,
) -> None:
    run = launch(pod(python(INSIDE)), tmp_path / "run")
    code = asyncio.run(runtime().run(run))
    log = run.log.read_text()
    assert code == 0, log
    lines = log.splitlines()
    assert f"ids {UID} {GID} [{FS_GROUP}]" in lines  # runAsUser, runAsGroup, fsGroup
    assert "CapEff 0000000000000000" in lines
    assert "Seccomp 2" in lines and "NoNewPrivs 1" in lines
    for path in ("/probe", "/app/probe", "/etc/probe"):
        assert f"refused {path} 30" in lines  # EROFS: the image's root is read-only
    assert "refused /var/run/pht/probe 30" in lines  # the Secret volume too
    assert "refused /var/run/pht/token 30" in lines
    assert f"token {TOKEN}" in lines
    assert "scratch 1000" in lines
    assert "scratch-big refused 28" in lines  # ENOSPC: the emptyDir's sizeLimit
    # The seccomp filter refuses namespaces (unprivileged user namespaces included) and mount.
    assert "unshare-user -1 1" in lines and "unshare-net -1 1" in lines
    assert "mount -1 1" in lines
    # Masked (something mounted over them) as in runc's default spec.
    assert "masked /proc/keys /proc/timer_list /proc/acpi" in lines
    assert "proc-sys refused 30" in lines
    assert "resolv ''" in lines  # no DNS server
    nothing_left()


def test_the_memory_limit_kills_an_allocating_train_and_says_oomkilled(tmp_path: Path) -> None:
    hog = "x = []\nwhile True:\n    x.append(bytearray(8 * 1024 * 1024))"
    run = launch(pod(python(hog), memory="64Mi"), tmp_path / "run")
    code = asyncio.run(runtime().run(run))
    assert code == 137, run.log.read_text()
    assert run.notes == [OOM_KILLED]
    nothing_left()


def test_an_ordinary_failure_is_not_oomkilled(tmp_path: Path) -> None:
    run = launch(pod(python("raise SystemExit(3)")), tmp_path / "run")
    assert asyncio.run(runtime().run(run)) == 3
    assert run.notes == []


def test_the_sdks_reason_reaches_the_termination_message(tmp_path: Path) -> None:
    fail = "import pht_train, os\nprint(oct(os.stat('/dev/termination-log').st_mode))\n"
    fail += "pht_train.fail('InvalidParameters')"
    run = launch(pod(python(fail)), tmp_path / "run")
    assert asyncio.run(runtime().run(run)) == 3, run.log.read_text()
    assert "0o100600" in run.log.read_text()  # a regular file the train's user may write
    assert termination_message(run) == "InvalidParameters"
    nothing_left()


def test_a_megabyte_in_the_termination_log_is_read_up_to_the_kubelets_cap(
    tmp_path: Path,
) -> None:
    flood = "open('/dev/termination-log', 'w').write('Reason\\n' + 'x' * 1024 * 1024)\n"
    run = launch(pod(python(flood + "raise SystemExit(3)")), tmp_path / "run")
    assert asyncio.run(runtime().run(run)) == 3, run.log.read_text()
    message = termination_message(run)
    assert len(message.encode()) == TERMINATION_MESSAGE_MAX_BYTES
    assert message.startswith("Reason\n")


def test_the_deadline_kills_the_container_and_nothing_is_left(tmp_path: Path) -> None:
    run = launch(pod(python("import time; time.sleep(120)")), tmp_path / "run", timeout=3.0)
    started = asyncio.run(_timed(runtime().run(run)))
    code, seconds = started
    assert code is None
    assert seconds < 30
    nothing_left()


async def _timed(work: "asyncio.Future[int | None] | object") -> tuple[int | None, float]:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    result = await work  # type: ignore[misc]
    return result, loop.time() - begin


def test_cancelling_a_run_kills_the_container_and_removes_its_network_and_cgroups(
    tmp_path: Path,
) -> None:
    run = launch(
        pod(python("print('started', flush=True)\nimport time; time.sleep(120)")), tmp_path / "run"
    )

    async def scenario() -> list[str]:
        task = asyncio.create_task(runtime().run(run))
        for _ in range(300):
            await asyncio.sleep(0.1)
            if run.log.exists() and "started" in run.log.read_text():
                break
        during = podnetwork.leftovers()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return during

    during = asyncio.run(scenario())
    assert "started" in run.log.read_text()
    assert any(name.startswith("pht-") for name in during), during  # it had a network
    assert any(name.startswith("pht_pod_") for name in during), during
    nothing_left()


def test_a_run_cancelled_while_its_network_is_made_leaves_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod deleted at the moment its network is being made: the network is finished in a
    worker thread after the cancel, and must still be taken down."""
    made: list[str] = []
    real_create = podnetwork.create

    def slow_create(pod_id: str, listener: str, port: int) -> podnetwork.PodNetwork:
        time.sleep(1.0)
        network = real_create(pod_id, listener, port)
        made.append(network.namespace)
        return network

    monkeypatch.setattr(podnetwork, "create", slow_create)
    run = launch(pod(python("print('never')")), tmp_path / "run")

    async def scenario() -> None:
        task = asyncio.create_task(runtime().run(run))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert made, "the network was made after the cancel"
    nothing_left()


def test_a_run_cancelled_again_and_again_still_cleans_up(tmp_path: Path) -> None:
    """An agent stopping while its event loop closes cancels a pod's task more than once: the
    clean-up must still remove the container and its network."""
    run = launch(
        pod(python("print('started', flush=True)\nimport time; time.sleep(120)")), tmp_path / "run"
    )

    async def scenario() -> None:
        task = asyncio.create_task(runtime().run(run))
        for _ in range(300):
            await asyncio.sleep(0.1)
            if run.log.exists() and "started" in run.log.read_text():
                break
        while not task.done():
            task.cancel()
            await asyncio.sleep(0.01)
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert "started" in run.log.read_text()
    nothing_left()


def test_only_images_with_an_archive_are_run() -> None:
    runc = runtime()
    assert runc.image_available(TRAIN_IMAGE)
    assert runc.image_available("ghcr.io/pht-station/trains/kaplan-meier:0.1.0")
    assert not runc.image_available("ghcr.io/pht-station/trains/not-built@sha256:" + "2" * 64)
    # The same name under another registry is another image.
    assert not runc.image_available("evil.example/pht-station/trains/cohort-summary:0.1.0")


def test_without_runc_the_agent_falls_back_to_processes_and_says_exactly_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no runc (nor anything else) on PATH
    said: list[str] = []
    chosen, name = choose_runtime("auto", probeimage.ARCHIVES, tmp_path / "cache", said.append)
    assert isinstance(chosen, ProcessRuntime) and name == "process"
    (line,) = said
    assert "no 'runc' on PATH" in line
    assert "FALLING BACK TO LOCAL PROCESSES WITHOUT ISOLATION" in line
    with pytest.raises(RuntimeUnavailable, match="no 'runc' on PATH"):
        choose_runtime("runc", probeimage.ARCHIVES, tmp_path / "cache", said.append)


def test_without_image_archives_the_fallback_names_the_missing_images(tmp_path: Path) -> None:
    said: list[str] = []
    chosen, _ = choose_runtime("auto", tmp_path / "no-images", tmp_path / "cache", said.append)
    assert isinstance(chosen, ProcessRuntime)
    assert "no image archives in" in said[0] and "make images" in said[0]


def test_runc_is_chosen_where_it_works_and_process_when_asked(tmp_path: Path) -> None:
    said: list[str] = []
    chosen, name = choose_runtime("auto", probeimage.ARCHIVES, tmp_path, said.append)
    assert isinstance(chosen, RuncRuntime) and name == "runc" and said == []
    chosen, name = choose_runtime("process", probeimage.ARCHIVES, tmp_path, said.append)
    assert isinstance(chosen, ProcessRuntime) and name == "process"
    with pytest.raises(RuntimeUnavailable, match="unknown runtime"):
        choose_runtime("docker", probeimage.ARCHIVES, tmp_path, said.append)


def _pht_demo(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PATH": path} if path is not None else {})}
    return subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.timeout(90)
def test_pht_demo_refuses_a_runtime_that_cannot_work_here_in_one_line(tmp_path: Path) -> None:
    emulated = _pht_demo("--runtime", "runc", "--once", "--work-dir", str(tmp_path / "w"))
    assert emulated.returncode == 2
    assert emulated.stderr.strip() == "error: --runtime applies to --cluster real only"
    # This machine's commands, runc left out.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(":"):
        if not Path(folder).is_dir():
            continue
        for command in Path(folder).iterdir():
            if command.name != "runc" and not (bin_dir / command.name).exists():
                (bin_dir / command.name).symlink_to(command)
    tools = f"{Path(sys.executable).parent}:{REPO / '.tools' / 'bin'}:{bin_dir}"
    assert shutil.which("runc", path=tools) is None
    without_runc = _pht_demo(
        "--cluster",
        "real",
        "--runtime",
        "runc",
        "--once",
        "--work-dir",
        str(tmp_path / "w"),
        path=tools,
    )
    assert without_runc.returncode == 2, without_runc.stderr
    assert without_runc.stderr.strip().splitlines() == [
        "error: train pods cannot run under runc here: no 'runc' on PATH "
        "(apt-get install runc; 'make tools' installs it)"
    ]
    assert not (tmp_path / "w").exists()  # refused before anything started
