"""``pht dev cluster``: a real Kubernetes control plane on this machine, for development.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler (v1.37) and kwok, built by
``make tools``, listening on 127.0.0.1 only, with one kubeconfig per identity (admin, two
researchers, two stewards). It runs until Ctrl-C; no component outlives the command, and a
temporary state folder it made is removed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from pht_cli.sandbox import require_sandbox


def cluster(args: argparse.Namespace) -> int:
    require_sandbox()
    from pht_sandbox.controlplane.binaries import locate
    from pht_sandbox.controlplane.cluster import ControlPlane
    from pht_sandbox.controlplane.processes import ControlPlaneError

    workdir = (
        Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="pht-cluster-"))
    )
    try:
        plane = ControlPlane(workdir, locate(build=False))
        plane.start()
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return _report_and_wait(plane, args.once)
    finally:
        # Whatever ends this command (Ctrl-C, SIGTERM, a closed pipe), no component outlives it;
        # a folder the user named is kept (it may hold more than the control plane's state).
        if args.work_dir:
            plane.stop()
        else:
            plane.remove()


def _report_and_wait(plane: Any, once: bool) -> int:
    print(f"control plane ready in {plane.timings['total']:.1f} s at {plane.server}")
    for name, seconds in plane.timings.items():
        if name != "total":
            print(f"  {name:<24} ready after {seconds:5.1f} s")
    print("kubeconfigs (export KUBECONFIG=<file>):")
    for name, path in plane.kubeconfigs.items():
        if name in ("admin", "researcher", "researcher2", "steward", "steward2"):
            print(f"  {name:<12} {path}")
    print(f"component logs: {plane.logs}", flush=True)
    if once:
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            dead = [c.name for c in plane.components if not c.running()]
            if dead:
                print(f"error: {', '.join(dead)} stopped; logs in {plane.logs}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dev", help="development tools (a real local control plane)")
    commands = parser.add_subparsers(dest="dev_command", metavar="COMMAND", required=True)
    start = commands.add_parser(
        "cluster",
        help="run a real Kubernetes control plane (API server, controllers, scheduler, kwok nodes)",
        description="Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and "
        "kwok (one CPU node, two GPU nodes that run nothing) on 127.0.0.1, print a kubeconfig "
        "per identity, and run until Ctrl-C. Build the binaries first with 'make tools'.",
    )
    start.add_argument("--work-dir", help="state folder (default: a new temporary folder)")
    start.add_argument("--once", action="store_true", help="start, report timings, stop")
    start.set_defaults(handler=cluster)
