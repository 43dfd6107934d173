"""``pht operator``: run the station operator (Kopf) against the current kubeconfig or in-cluster.

Every flag is generated from a field of :class:`pht_operator.settings.OperatorSettings` and
mirrors its ``PHT_OPERATOR_*`` environment variable; a flag wins over the environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from pht_cli import settings_flags
from pht_operator.settings import OperatorSettings

#: Earlier, shorter spellings of some flags; they keep working.
FLAG_ALIASES: Final = {
    "watch_timeout_seconds": ("--watch-timeout",),
    "job_ttl_seconds": ("--job-ttl",),
    "poll_interval_seconds": ("--poll-interval",),
}


def settings_from(args: argparse.Namespace) -> OperatorSettings:
    return OperatorSettings(**settings_flags.overrides(args, OperatorSettings))


def run(args: argparse.Namespace) -> int:
    from pht_operator.entrypoint import main

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
        "each flag below overrides one (secrets only as variables or files). Login: "
        "--kubeconfig, $KUBECONFIG, ~/.kube/config or the in-cluster service account.",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, default=None, metavar="FILE", help="kubeconfig file"
    )
    settings = parser.add_argument_group("settings (PHT_OPERATOR_* variables)")
    settings_flags.add_settings_flags(settings, OperatorSettings, aliases=FLAG_ALIASES)
    parser.set_defaults(handler=run)
