"""``pht api``: serve the station API (internal, external and metrics listeners) in one process.

Every setting flag is generated from a field of :class:`pht_station_api.settings.Settings` and
mirrors its ``PHT_API_*`` environment variable; a flag wins over the environment.
"""

import argparse
import asyncio
import sys
from typing import Any, Final

from pydantic import ValidationError

from pht_cli import settings_flags
from pht_station_api.settings import Settings

#: Earlier spellings of some flags; they keep working.
FLAG_ALIASES: Final = {"policy_file": ("--policy",)}
#: ``--host`` binds every listener; a listener's own ``--*-host`` flag wins over it.
HOST_FIELDS: Final = ("internal_host", "external_host", "metrics_host")


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = settings_flags.overrides(args, Settings)
    if args.host is not None:
        for field in HOST_FIELDS:
            overrides.setdefault(field, args.host)
    return overrides


def run(args: argparse.Namespace) -> int:
    from pht_station_api.errors import StationApiError
    from pht_station_api.servers import serve
    from pht_station_api.triplestores.loading import StoreLocked

    try:
        settings = Settings(**settings_overrides(args))
        asyncio.run(serve(settings))
    except (ValidationError, ValueError, StoreLocked, OSError, StationApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "api",
        help="serve the station API (FAIR Data Point, SPARQL gateway, results)",
        description="Start the station API's internal listener (operator, trains: SPARQL "
        "gateway, progress, uploads) and external listener (FAIR Data Point, stewards, "
        "requesters). Every option can also be set as PHT_API_* environment variables "
        "(docs/station-api.md); secrets only as variables or files. /metrics has its own "
        "listener (--metrics-port), which answers only a scraper presenting the metrics token.",
    )
    parser.add_argument("--host", help="bind every listener to this address")
    settings = parser.add_argument_group("settings (PHT_API_* variables)")
    settings_flags.add_settings_flags(settings, Settings, aliases=FLAG_ALIASES)
    parser.set_defaults(handler=run)
