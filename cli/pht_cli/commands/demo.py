"""``pht demo``: the station in a box (emulated cluster, real operator and station API)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pht_cli.sandbox import require_sandbox


def run(args: argparse.Namespace) -> int:
    require_sandbox()
    from pht_sandbox.controlplane.processes import ControlPlaneError
    from pht_sandbox.nodeagent import RuntimeUnavailable
    from pht_sandbox.stations import WorkDirInUse

    try:
        if getattr(args, "demo_command", None) == "federated":
            if args.cluster != "emulator":
                print("error: the federated demo runs on the emulator only", file=sys.stderr)
                return 2
            from pht_sandbox.federated import federated_demo

            return asyncio.run(
                federated_demo(
                    Path(args.work_dir) / "federated", Path(args.out), args.once, args.model
                )
            )
        runtime = getattr(args, "runtime", None)
        if runtime is not None and args.cluster != "real":
            print("error: --runtime applies to --cluster real only", file=sys.stderr)
            return 2
        from pht_sandbox.demo import demo

        return asyncio.run(
            demo(
                Path(args.work_dir),
                Path(args.out),
                args.once,
                args.patients,
                args.cluster,
                runtime or "auto",
            )
        )
    except KeyboardInterrupt:
        return 0
    except (WorkDirInUse, ControlPlaneError, RuntimeUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(
            f"error: {exc}\n(the components' logs are in {Path(args.work_dir).resolve()})",
            file=sys.stderr,
        )
        return 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a whole station on this machine and send a train through it",
        description="Start the station in a box on 127.0.0.1: an EMULATED Kubernetes API (or, "
        "with --cluster real, a real control plane with the chart installed), the "
        "real operator, the real station API on embedded Oxigraph with a synthetic cohort, and "
        "a local job runner that runs bundled example trains as local processes (not isolated "
        "like pods). Applies a StationPolicy and the Kaplan-Meier Train, approves it as a "
        "steward, follows it to the released result, prints and saves it with a plot. Without "
        "--once the station keeps running for kubectl until Ctrl-C.",
    )
    parser.add_argument("--once", action="store_true", help="exit after the train (0 = succeeded)")
    parser.add_argument("--work-dir", default=".demo", help="station state (default: .demo)")
    parser.add_argument("--out", default="demo-output", help="where the result is saved")
    parser.add_argument("--patients", type=int, default=422, help="synthetic cohort size")
    parser.add_argument(
        "--cluster",
        choices=("emulator", "real"),
        default="emulator",
        help="emulator (default): the emulated Kubernetes API; real: a real control plane on "
        "127.0.0.1 (etcd, kube-apiserver, controller manager, scheduler; built by 'make tools') "
        "with the chart installed and a node agent that runs train pods",
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", "runc", "process"),
        default=None,
        help="with --cluster real, how the node agent runs train pods: runc (each pod an "
        "isolated OCI container from its image archive; needs root, runc, iproute2, nftables "
        "and 'make images'), process (local processes, no isolation) or auto (default: runc "
        "where this machine allows it, else processes, saying why)",
    )
    parser.set_defaults(handler=run)
    commands = parser.add_subparsers(dest="demo_command", metavar="COMMAND")
    federated = commands.add_parser(
        "federated",
        help="three stations and a coordinator fitting a federated model (logistic or Cox)",
        description="Start three stations (three synthetic hospitals with different case "
        "mixes), each with a standing approval, and fit a logistic regression for 2-year "
        "survival (or, with --model cox, a Cox model of overall survival stratified by "
        "station) by federated Newton rounds; compare with the pooled fit.",
    )
    federated.add_argument(
        "--once",
        action="store_true",
        help="exit when done (0 = agreed); otherwise the stations keep running for kubectl",
    )
    federated.add_argument(
        "--model",
        choices=("logistic", "cox"),
        default="logistic",
        help="logistic (default): 2-year survival by logistic regression, checked against a "
        "pooled fit; cox: a Cox model on age, sex and T and N stage, each station its own "
        "stratum, printing hazard ratios with 95%% confidence intervals and each station's "
        "C-index, writing federated-cox-model.json and checked against lifelines' "
        "CoxPHFitter on the pooled rows",
    )
    federated.set_defaults(handler=run)
