"""Time from `make demo` (dependencies installed) to the printed released result.

Not a test: prints figures. Starts `make demo` as a user would, timestamps each line, stops the
demo with Ctrl-C (SIGINT) once the result is printed, and reports the time to each milestone.
Usage: .venv/bin/python bench/demo_time.py [--runs 3]
"""

import argparse
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MILESTONES = {
    "station up": "station up in",
    "train applied": "Train/km-survival-by-stage created",
    "approved": "approved by",
    "result printed": "released result of Train",
}


def one_run() -> dict[str, float]:
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: dict[str, float] = {}
    assert process.stdout is not None
    for line in process.stdout:
        for name, marker in MILESTONES.items():
            if marker in line and name not in seen:
                seen[name] = time.monotonic() - started
        if "result printed" in seen and "saved:" in line:
            break
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    print(
        f"{'milestone':<16} " + " ".join(f"run {i + 1:>2}" for i in range(len(runs))) + "  median"
    )
    for name in MILESTONES:
        values = [r.get(name, float("nan")) for r in runs]
        cells = " ".join(f"{v:6.1f}" for v in values)
        print(f"{name:<16} {cells}  {statistics.median(values):6.1f} s")
    print("goal: result printed <= 30 s after `make demo` (dependencies installed)")


if __name__ == "__main__":
    main()
