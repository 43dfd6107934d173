"""``pht load``: bulk-load RDF into a named graph of the station's data store.

Either directly into the Oxigraph directory (``--store``; the API must be stopped — its lock
makes this fail fast otherwise) or through the running API's operator-authenticated endpoint
(``--api``). Never two writers.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import httpx

from pht_cli.credentials import may_use_environment_proxies

MEDIA = {
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
    "nquads": "application/n-quads",
    "trig": "application/trig",
}


def _through_api(args: argparse.Namespace, fmt: str, graph: str) -> int:
    token_file = args.operator_token_file
    if token_file is None:
        print("error: --api needs --operator-token-file", file=sys.stderr)
        return 2
    token = Path(token_file).read_text(encoding="utf-8").strip()
    url = args.api.rstrip("/") + "/internal/v1/graphs"
    with Path(args.file).open("rb") as handle:
        response = httpx.post(
            url,
            params={"graph": graph},
            content=handle.read(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": MEDIA[fmt]},
            timeout=600,
            # The operator credential never goes through a proxy over plain HTTP.
            trust_env=may_use_environment_proxies(url),
        )
    if response.status_code != 200:
        print(f"error: the API answered {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    body = response.json()
    print(f"{args.file}: loaded; graph {body['graph']} now holds {body['quads']} triples")
    return 0


def run(args: argparse.Namespace) -> int:
    from pht_station_api.triplestores.loading import StoreLocked, format_for, load_rdf, writer_lock

    try:
        fmt = args.format or format_for(args.file)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Quads keep their own graphs only when asked; by default everything goes into --graph.
    graph: str | None = None if args.keep_graphs else args.graph
    if args.api:
        return _through_api(args, fmt, args.graph)
    if args.store is None:
        print("error: give --store DIR (API stopped) or --api URL", file=sys.stderr)
        return 2
    store = Path(args.store)
    try:
        with writer_lock(store), Path(args.file).open("rb") as handle:
            count = load_rdf(store, handle, fmt, graph)
    except StoreLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, SyntaxError) as exc:
        print(f"error: cannot load {args.file}: {exc}", file=sys.stderr)
        return 1
    where = f"graph {graph}" if graph else "the store"
    print(f"{args.file}: loaded; {where} now holds {count} triples")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load",
        help="bulk-load RDF into a named graph of the data store",
        description="Load Turtle, N-Triples, N-Quads or TriG into a named graph: directly "
        "(--store, with the API stopped) or through the running API (--api, operator token).",
    )
    parser.add_argument("file", metavar="FILE", help="the RDF file to load")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--store", help="the Oxigraph data directory")
    target.add_argument("--api", help="internal URL of the running station API")
    parser.add_argument("--operator-token-file", help="with --api: the operator credential")
    parser.add_argument(
        "--graph", default="urn:pht:graph:lung1", help="named graph (default urn:pht:graph:lung1)"
    )
    parser.add_argument(
        "--format", choices=sorted(MEDIA), help="RDF syntax (default: from the file's suffix)"
    )
    parser.add_argument(
        "--keep-graphs", action="store_true", help="N-Quads/TriG: keep the file's own graphs"
    )
    parser.set_defaults(handler=run)
