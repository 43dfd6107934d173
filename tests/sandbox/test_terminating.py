"""SIGTERM stops the station in a box as Ctrl-C does: no process it started outlives ``pht``.
While it runs, everything it listens on is on the loopback interface.

Each test starts the real command, reads its process tree from /proc (children run in sessions
of their own, so the tree is the only link to them), sends SIGTERM and waits for every process
of that tree to be gone."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pht_sandbox.controlplane.binaries import locate

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_SECONDS = 30.0
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root``, right now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return found


def _address(hex_address: str) -> str:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net/tcp* prints the address as 32-bit words in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        text = ".".join(str(b) for b in words)
    elif words[:12] == b"\0" * 10 + b"\xff\xff":
        text = "::ffff:" + ".".join(str(b) for b in words[12:])
    else:
        import ipaddress

        text = str(ipaddress.IPv6Address(words))
    return f"{text}:{int(port, 16)}"


def listening(pids: list[int]) -> list[tuple[str, str]]:
    """(address:port, command) of every listening TCP socket the processes hold open."""
    owners: dict[str, int] = {}
    for pid in pids:
        with_fds = Path(f"/proc/{pid}/fd")
        try:
            fds = list(with_fds.iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = pid
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in owners:  # 0A: LISTEN
                found.append((_address(fields[1]), str(owners[fields[9]])))
    return found


class Command:
    """A ``pht`` command in its own process, its output read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pht_cli.main", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "exited early:\n" + "".join(self.seen)
                continue
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} within {timeout} s:\n" + "".join(self.seen))

    def terminate_and_check_nothing_is_left(self) -> int:
        """SIGTERM, then every process of the tree is gone; returns the command's exit code."""
        tree = descendants(self.process.pid)
        assert tree, "the command started no process"
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=GONE_WITHIN_SECONDS)
        deadline = time.monotonic() + GONE_WITHIN_SECONDS
        while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
            time.sleep(0.2)
        left = {pid: command for pid, command in tree.items() if _alive(pid)}
        for pid in left:  # do not leave them behind this test either
            os.kill(pid, signal.SIGKILL)
        assert not left, f"still running after SIGTERM: {left}"
        assert code != -signal.SIGTERM, "the command died of SIGTERM instead of stopping"
        return code

    def kill(self) -> None:
        for pid in descendants(self.process.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_the_proc_readers_see_this_process_and_its_listening_socket() -> None:
    """Guards the helpers: a child is found, a socket on 0.0.0.0 is reported as such."""
    import socket

    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (f"0.0.0.0:{port}", str(os.getpid())) in listening([os.getpid()])
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in descendants(os.getpid())
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigterm_stops_the_demo_station_which_listens_on_loopback_only(tmp_path: Path) -> None:
    demo = Command(
        "demo",
        "--work-dir",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "out"),
        "--patients",
        "120",
        cwd=REPO,
    )
    try:
        demo.wait_for("The station keeps running", timeout=180)
        tree = descendants(demo.process.pid)
        commands = " | ".join(tree.values())
        assert "pht_cli.main api" in commands and "pht_cli.main operator" in commands
        sockets = listening([demo.process.pid, *tree])
        assert len(sockets) >= 5, sockets  # emulated API, two API listeners, health, metrics
        assert [s for s in sockets if s[0].rsplit(":", 1)[0] not in LOOPBACK] == []
        assert demo.terminate_and_check_nothing_is_left() == 0, "".join(demo.seen)
    finally:
        demo.kill()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("when", ["starting", "running"])
def test_sigterm_stops_every_control_plane_process(tmp_path: Path, when: str) -> None:
    locate(build=False)  # the binaries from `make tools`; missing ones are an error
    cluster = Command("dev", "cluster", "--work-dir", str(tmp_path / "plane"), cwd=tmp_path)
    try:
        if when == "starting":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                "kube-apiserver" in command for command in descendants(cluster.process.pid).values()
            ):
                time.sleep(0.05)  # etcd runs, the API server is starting, the rest is to come
            # Ctrl-C while starting ends the command with KeyboardInterrupt; so does SIGTERM.
            assert cluster.terminate_and_check_nothing_is_left() in (-signal.SIGINT, 130)
        else:
            cluster.wait_for("component logs:", timeout=180)
            tree = descendants(cluster.process.pid)
            assert len(tree) >= 5, tree  # etcd, API server, controllers, scheduler, kwok
            sockets = listening([cluster.process.pid, *tree])
            assert sockets
            assert [s for s in sockets if s[0].rsplit(":", 1)[0] not in LOOPBACK] == []
            assert cluster.terminate_and_check_nothing_is_left() == 0, "".join(cluster.seen)
    finally:
        cluster.kill()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_stops_a_local_run_with_its_train_and_station_api(tmp_path: Path) -> None:
    package = tmp_path / "slow-train" / "slow_train"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import time\n\ntime.sleep(600)\n")
    manifest = REPO / "examples" / "trains" / "kaplan-meier.yaml"
    run = Command(
        "train",
        "run-local",
        str(package.parent),
        "--manifest",
        str(manifest),
        "--out",
        str(tmp_path / "out"),
        cwd=REPO,
    )
    try:
        run.wait_for("run     attempt 1", timeout=90)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "-m slow_train" in command for command in descendants(run.process.pid).values()
        ):
            time.sleep(0.05)
        commands = " | ".join(descendants(run.process.pid).values())
        assert "pht_cli.main api" in commands and "-m slow_train" in commands, commands
        sockets = listening([run.process.pid, *descendants(run.process.pid)])
        assert sockets
        assert [s for s in sockets if s[0].rsplit(":", 1)[0] not in LOOPBACK] == []
        # Ctrl-C ends a local run with 130 ("interrupted"); so does SIGTERM.
        assert run.terminate_and_check_nothing_is_left() == 130, "".join(run.seen)
    finally:
        run.kill()
