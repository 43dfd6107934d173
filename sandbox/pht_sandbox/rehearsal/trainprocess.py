"""The train as a local process with the environment and files of the operator's own Job.

The Job and the Secret are built by :mod:`pht_operator.runobjects`; each mount path is mapped to a
local directory, the memory limit becomes an address-space limit, and the Job's
``backoffLimit`` and ``activeDeadlineSeconds`` bound the attempts.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pht_contract.objects import Obj
from pht_contract.quantities import QuantityError, parse_quantity
from pht_operator.runobjects import RunRequest, build_job, build_secret
from pht_operator.settings import OperatorSettings
from pht_sandbox.bundledtrains import BundledTrain
from pht_sandbox.podruntime import ADDRESS_SPACE_HEADROOM, pod_environment
from pht_sandbox.rehearsal.stationprocess import (
    LOCAL_PROGRESS_TICK_SECONDS,
    OperatorCalls,
    StationApiProcess,
)

Say = Callable[[str], None]

#: The failure line the SDK prints last on stderr (``pht_train.failures.FAILURE_PREFIX``).
FAILURE_PREFIX: Final = "pht-train-failure: "
POLL_SECONDS: Final = 0.25
LOG_TAIL_LINES: Final = 15


def _local_environment(job: Obj, secret: Obj, run_dir: Path, train: BundledTrain) -> dict[str, str]:
    """The Job's environment with each mount path mapped to a local directory."""
    secrets = {secret["metadata"]["name"]: secret.get("data") or {}}
    return pod_environment(job["spec"]["template"]["spec"], secrets, run_dir, train)


def _memory_limit(container: Obj) -> int | None:
    limits = container.get("resources", {}).get("limits", {})
    if "nvidia.com/gpu" in limits:
        return None  # GPU drivers map far more address space than any limit allows
    try:
        return int(parse_quantity(str(limits.get("memory")))) if limits.get("memory") else None
    except QuantityError:
        return None


def failure_reason(log: Path) -> tuple[str | None, list[str]]:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        if line.startswith(FAILURE_PREFIX):
            return line[len(FAILURE_PREFIX) :].strip(), lines[-LOG_TAIL_LINES:]
    return None, lines[-LOG_TAIL_LINES:]


def run_process(
    station: StationApiProcess,
    request: RunRequest,
    token: str,
    train: BundledTrain,
    run_dir: Path,
    say: Say,
) -> tuple[int | None, Path]:
    """Run the train (retries like the Job's ``backoffLimit``); exit code, None at the deadline."""
    settings = OperatorSettings(
        run_api_url=station.internal, run_api_port=int(station.internal.rsplit(":", 1)[1])
    )
    job = build_job(request, settings)
    secret = build_secret(request, token, settings)
    env = _local_environment(job, secret, run_dir, train)
    container = job["spec"]["template"]["spec"]["containers"][0]
    memory = _memory_limit(container)
    command = [sys.executable, "-m", train.module, *container.get("args", [])]
    if container.get("command"):
        say(f"note: spec.command is ignored locally; running python -m {train.module}")
    attempts = int(job["spec"].get("backoffLimit") or 0) + 1
    deadline = time.monotonic() + float(job["spec"].get("activeDeadlineSeconds") or 3600)
    log = run_dir / "train.log"

    def limit() -> None:  # runs in the child, before exec
        if memory:
            cap = memory + ADDRESS_SPACE_HEADROOM
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    code: int | None = None
    seen: tuple[int, str] | None = None
    for attempt in range(1, attempts + 1):
        say(f"run     attempt {attempt}: python -m {train.module} (local process, not a pod)")
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=env.get("HOME", str(run_dir)),
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=limit,  # the memory limit must be set in the child
                start_new_session=True,
            )
        try:
            while (code := process.poll()) is None and time.monotonic() < deadline:
                seen = _report_progress(station.operator, request.uid, seen, say)
                time.sleep(POLL_SECONDS)
            if code is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        time.sleep(LOCAL_PROGRESS_TICK_SECONDS)  # the last report shows at the next tick
        seen = _report_progress(station.operator, request.uid, seen, say)
        if code == 0 or code is None:
            break
    return code, log


def _report_progress(
    operator: OperatorCalls, uid: str, seen: tuple[int, str] | None, say: Say
) -> tuple[int, str] | None:
    progress = operator.state(uid).progress
    if progress is None:
        return seen
    current = (progress.percent, progress.stage.value)
    if current != seen:
        say(f"progress {progress.percent:>3}%  {progress.stage.value}")
    return current
