"""Steward and requester commands against the station API's external listener.

* ``pht held`` — results waiting for a steward (rule and findings, no content);
* ``pht release NS/NAME --reason …`` / ``pht block NS/NAME --reason …`` — a steward's decision;
* ``pht result view NS/NAME`` — what would leave (stewards);
* ``pht result get NS/NAME [--table T]`` — a released result as JSON, or one table as CSV.

The caller is identified by a bearer token (``--token``/``--token-file``, ``PHT_TOKEN``, or the
kubeconfig user's own token, see :mod:`pht_cli.credentials`): a Kubernetes token in a cluster,
a local identity token in the station in a box. The station API asks RBAC whether that
identity may act on the Train.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from pht_cli import credentials, output
from pht_cli.errors import CliError, one_line

DEFAULT_URL = "http://localhost:8080"
TIMEOUT_SECONDS = 30.0


class CommandError(Exception):
    """Printed as ``error: …`` with exit code 1."""


def _train(reference: str, namespace: str | None) -> tuple[str, str]:
    ns, _, name = reference.rpartition("/")
    ns = ns or namespace or ""
    if not ns or not name:
        raise CommandError("name the train as NAMESPACE/NAME or NAME with --namespace")
    return ns, name


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credentials.bearer_token(args)}"}
    try:
        with httpx.Client(
            base_url=args.url,
            timeout=TIMEOUT_SECONDS,
            trust_env=credentials.may_use_environment_proxies(args.url),
        ) as client:
            response = client.request(method, path, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        reason = one_line(exc) or type(exc).__name__
        raise CommandError(f"cannot reach the station API at {args.url}: {reason}") from None
    if response.status_code >= 400:
        try:
            body = response.json()
            detail = f"{body.get('reason')}: {one_line(body.get('message'))}"
        except (ValueError, AttributeError):
            detail = f"HTTP {response.status_code}"
        raise CommandError(detail)
    return response


HELD_COLUMNS = (
    output.Column("TRAIN", value=lambda item: f"{item['namespace']}/{item['name']}"),
    output.Column("RULE", "rule"),
    output.Column("DECIDED", "decidedAt"),
    output.Column("FINDINGS", "findings"),
)


def held(args: argparse.Namespace) -> int:
    items = _request(args, "GET", "/stewards/held").json()["items"]
    output.emit(items, HELD_COLUMNS, args.output, empty="no held results")
    return 0


def _decide(args: argparse.Namespace, decision: str) -> int:
    namespace, name = _train(args.train, args.namespace)
    body = {"decision": decision, "reason": args.reason}
    record = _request(
        args, "POST", f"/stewards/results/{namespace}/{name}/decision", json=body
    ).json()
    print(f"{namespace}/{name}: {record['release']} (rule {record['rule'] or '-'})")
    return 0


def release(args: argparse.Namespace) -> int:
    return _decide(args, "Release")


def block(args: argparse.Namespace) -> int:
    return _decide(args, "Block")


def _write(args: argparse.Namespace, text: str) -> None:
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def get_result(args: argparse.Namespace) -> int:
    namespace, name = _train(args.train, args.namespace)
    path = f"/results/{namespace}/{name}"
    if args.table:
        _write(args, _request(args, "GET", f"{path}/tables/{args.table}").text)
    else:
        _write(args, json.dumps(_request(args, "GET", path).json(), indent=1) + "\n")
    return 0


def view_result(args: argparse.Namespace) -> int:
    namespace, name = _train(args.train, args.namespace)
    body = _request(args, "GET", f"/stewards/results/{namespace}/{name}").json()
    _write(args, json.dumps(body, indent=1) + "\n")
    return 0


def _guarded(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except CliError as exc:  # no usable credential
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except (CommandError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("PHT_URL", DEFAULT_URL),
        help=f"the station API's external listener (PHT_URL, default {DEFAULT_URL})",
    )
    credentials.add_token_options(parser)


def _train_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("train", metavar="TRAIN", help="NAMESPACE/NAME, or NAME with -n")
    parser.add_argument("-n", "--namespace", help="the Train's namespace")


def register(subparsers: Any) -> None:
    listing = subparsers.add_parser("held", help="results held for a steward")
    output.add_output_option(listing)
    _connection(listing)
    listing.set_defaults(handler=_guarded(held))
    for verb, handler, text in (
        ("release", release, "release a held result (stewards)"),
        ("block", block, "block a held result (stewards)"),
    ):
        parser = subparsers.add_parser(verb, help=text)
        _train_argument(parser)
        parser.add_argument("--reason", required=True, help="why (kept with the decision)")
        _connection(parser)
        parser.set_defaults(handler=_guarded(handler))
    result = subparsers.add_parser("result", help="a train's result")
    commands = result.add_subparsers(dest="result_command", metavar="COMMAND", required=True)
    get = commands.add_parser("get", help="download a released result (JSON, or a table as CSV)")
    _train_argument(get)
    get.add_argument("--table", help="one table as CSV")
    get.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    _connection(get)
    get.set_defaults(handler=_guarded(get_result))
    view = commands.add_parser("view", help="what a held result would release (stewards)")
    _train_argument(view)
    view.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    _connection(view)
    view.set_defaults(handler=_guarded(view_result))
