"""Entry point: every module in :mod:`pht_cli.commands` contributes one subcommand.

A command module defines ``register(subparsers)``, which adds its parser and sets
``handler`` (a function taking the parsed namespace and returning an exit code). New commands
need no edit here, so the operator, station API and demo commands stay in their own modules.

No command ends in a traceback: a :class:`~pht_cli.errors.CliError` is one line and exit 2,
anything unexpected one line and exit 1, with the traceback behind ``--debug``.
The same CLI runs as the kubectl plugin ``kubectl pht`` (:func:`kubectl_plugin`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, cast

import pht_contract
from pht_cli import commands
from pht_cli.errors import EXIT_UNEXPECTED, CliError

Handler = Callable[[argparse.Namespace], int]

PROG: Final = "pht"
KUBECTL_PROG: Final = "kubectl pht"
#: Exit code after Ctrl-C, as shells report it.
EXIT_INTERRUPTED: Final = 130
#: Flags accepted before the command (as ``kubectl pht -n NS pending`` passes them), and the
#: command's own option each one fills when the command has it and it was not given there.
GLOBAL_FLAGS: Final = {
    "global_kubeconfig": "kubeconfig",
    "global_context": "context",
    "global_namespace": "namespace",
}


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        dest="global_kubeconfig",
        type=Path,
        metavar="FILE",
        help="kubeconfig file, for commands that use one",
    )
    parser.add_argument(
        "--context",
        dest="global_context",
        metavar="NAME",
        help="kubeconfig context, for commands that use one",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        dest="global_namespace",
        metavar="NS",
        help="namespace, for commands that take one",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an unexpected error"
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {pht_contract.__version__}",
        help="print the station's version and exit",
    )


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Personal Health Train station for Kubernetes.",
    )
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def _apply_global_flags(args: argparse.Namespace) -> None:
    """A global flag fills the command's own option unless that was given too."""
    for global_dest, dest in GLOBAL_FLAGS.items():
        value = getattr(args, global_dest, None)
        if value is not None and hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, value)


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command; map every error to one line on stderr and an exit code."""
    try:
        return handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        # The message may quote input (data included): only its kind is printed.
        print(
            f"error: unexpected {type(exc).__name__}; re-run with --debug for details",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    handler = cast(Handler | None, getattr(args, "handler", None))
    if handler is None:
        parser.print_help()
        return 2
    _apply_global_flags(args)
    return run_handler(handler, args)


def kubectl_plugin(argv: Sequence[str] | None = None) -> int:
    """``kubectl-pht``: kubectl runs it for ``kubectl pht …`` with the words after ``pht``."""
    return main(argv, prog=KUBECTL_PROG)


if __name__ == "__main__":
    sys.exit(main())
