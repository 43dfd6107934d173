"""``pht api``: serve the station API (internal, external and metrics listeners) in one process."""

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def run(args: argparse.Namespace) -> int:
    from pht_station_api.errors import StationApiError
    from pht_station_api.servers import serve
    from pht_station_api.settings import Settings
    from pht_station_api.triplestores.loading import StoreLocked

    overrides: dict[str, Any] = {}
    for name, value in (
        ("STORE", args.store),
        ("SPARQL_ENDPOINT", args.sparql_endpoint),
        ("STATE_DIR", args.state_dir),
        ("INTERNAL_PORT", args.internal_port),
        ("EXTERNAL_PORT", args.external_port),
        ("INTERNAL_HOST", args.host),
        ("EXTERNAL_HOST", args.host),
        ("METRICS_HOST", args.host),
        ("METRICS_PORT", args.metrics_port),
        ("METRICS_TOKEN_FILE", args.metrics_token_file),
        ("POLICY_FILE", args.policy),
        ("OPERATOR_TOKEN_FILE", args.operator_token_file),
        ("STATION_NAME", args.station_name),
    ):
        if value is not None:
            overrides[name] = value
    try:
        settings = Settings(**overrides)
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
        "(docs/station-api.md). /metrics has its own listener (--metrics-port), which "
        "answers only a scraper presenting the metrics token.",
    )
    parser.add_argument("--store", type=Path, help="embedded Oxigraph data directory")
    parser.add_argument("--sparql-endpoint", help="the hospital's SPARQL endpoint instead")
    parser.add_argument("--state-dir", type=Path, help="registrations, audit store, results")
    parser.add_argument("--policy", type=Path, help="StationPolicy YAML for the FDP's graphs")
    parser.add_argument("--operator-token-file", type=Path, help="the operator's credential")
    parser.add_argument("--station-name", help="the constant 'station' metric label")
    parser.add_argument("--host", help="bind every listener to this address")
    parser.add_argument("--internal-port", type=int)
    parser.add_argument("--external-port", type=int)
    parser.add_argument(
        "--metrics-port", type=int, help="serve /metrics on this port (needs a scrape token)"
    )
    parser.add_argument(
        "--metrics-token-file", type=Path, help="the bearer token Prometheus presents"
    )
    parser.set_defaults(handler=run)
