"""The control plane's processes: started with their logs in files, waited for, stopped.

Readiness is always a real answer from the component (a health endpoint or an object the
component creates), never a sleep. A component that exits while being waited for fails the start
at once with the tail of its log, so a broken flag is a readable error, not a long timeout.
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class ControlPlaneError(RuntimeError):
    """The control plane could not be started; the message says which component and why."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the component binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class Component:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_after: float | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it holds; fail with the log's tail on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                code = self.process.returncode if self.process else None
                raise ControlPlaneError(
                    f"{self.name} exited (code {code}) before {what}; last lines of {self.log}:\n"
                    + log_tail(self.log)
                )
            try:
                if ready():
                    self.ready_after = time.monotonic() - self.started_at
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{self.name} was not {what} within {timeout:.0f} s; "
                    f"last lines of {self.log}:\n" + log_tail(self.log)
                )
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(grace)
