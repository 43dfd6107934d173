"""``pht operator``: run the station operator (Kopf) against the current kubeconfig or in-cluster.

Every flag mirrors a ``PHT_OPERATOR_*`` environment variable (see
:class:`pht_operator.settings.OperatorSettings`); a flag wins over the environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pht_operator.settings import OperatorSettings

_FLAGS: dict[str, tuple[str, type, str]] = {
    "station_namespaces": ("--station-namespaces", str, "comma-separated station namespaces"),
    "run_namespace": ("--run-namespace", str, "namespace where runs execute"),
    "station_api_url": ("--station-api-url", str, "station API internal URL (operator's view)"),
    "run_api_url": ("--run-api-url", str, "station API internal URL by IP address (runs' view)"),
    "run_api_port": ("--run-api-port", int, "station API internal port opened to runs"),
    "station_api_namespace": (
        "--station-api-namespace",
        str,
        "namespace of the station API pods (default: the operator's own)",
    ),
    "api_token_file": ("--api-token-file", Path, "file holding the operator's API credential"),
    "station_name": ("--station-name", str, "constant 'station' metric label"),
    "listen_host": ("--listen-host", str, "address of the health and metrics endpoints"),
    "health_port": ("--health-port", int, "port of /healthz"),
    "metrics_port": ("--metrics-port", int, "port of /metrics"),
    "watch_timeout_seconds": ("--watch-timeout", float, "server-side watch timeout (seconds)"),
    "stall_factor": ("--stall-factor", float, "liveness fails after this many watch timeouts"),
    "job_ttl_seconds": ("--job-ttl", int, "ttlSecondsAfterFinished once the outcome is recorded"),
    "poll_interval_seconds": ("--poll-interval", float, "re-check interval of waiting Trains"),
    "workers": ("--workers", int, "Trains reconciled concurrently"),
}


def settings_from(args: argparse.Namespace) -> OperatorSettings:
    overrides: dict[str, Any] = {
        field: getattr(args, field) for field in _FLAGS if getattr(args, field) is not None
    }
    if isinstance(overrides.get("station_namespaces"), str):
        overrides["station_namespaces"] = [
            part.strip() for part in overrides["station_namespaces"].split(",") if part.strip()
        ]
    return OperatorSettings(**overrides)


def run(args: argparse.Namespace) -> int:
    from pht_operator.runner import main

    try:
        settings = settings_from(args)
        settings.check_startup()
    except ValueError as exc:  # pydantic's ValidationError and SettingsError
        print(f"pht operator: invalid configuration: {exc}", file=sys.stderr)
        return 2
    return main(settings, kubeconfig=args.kubeconfig)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the station operator",
        description="Run the PHT station operator: admit, approve, run and follow Trains in "
        "the station namespaces. Configuration comes from PHT_OPERATOR_* environment variables; "
        "each flag below overrides one. Login: --kubeconfig, $KUBECONFIG, ~/.kube/config or "
        "the in-cluster service account.",
    )
    parser.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    for field, (flag, kind, text) in _FLAGS.items():
        parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
    parser.set_defaults(handler=run)
