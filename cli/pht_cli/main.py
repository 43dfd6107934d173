"""Entry point: every module in :mod:`pht_cli.commands` contributes its subcommands.

A command module defines ``register(subparsers)``, which adds its parsers and sets
``handler`` (a function taking the parsed namespace and returning an exit code).
:data:`COMMANDS` names each command word, the module that registers it and its one-line help.
A run imports only the module of the command it runs: ``pht operator`` does not load the
station API, numpy, the RDF store or the validators, which keeps the long-running processes
small and every command quick to start. The other commands appear in ``pht --help`` from their
entries here; ``pht completion`` builds the whole tree.

No command ends in a traceback: a :class:`~pht_cli.errors.CliError` is one line and exit 2,
anything unexpected one line and exit 1, with the traceback behind ``--debug``.
The same CLI runs as the kubectl plugin ``kubectl pht`` (:func:`kubectl_plugin`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn, cast

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


@dataclass(frozen=True)
class Command:
    """A command word, the module under :mod:`pht_cli.commands` that registers it, its help."""

    name: str
    module: str
    help: str


#: Every command, in the order ``pht --help`` lists them (the modules' order of registration).
COMMANDS: Final = (
    Command("api", "api", "serve the station API (FAIR Data Point, SPARQL gateway, results)"),
    Command("approve", "approvals", "approve a Train (bound to its current spec hash)"),
    Command("reject", "approvals", "reject a Train (final)"),
    Command("pending", "approvals", "list Trains that wait for approval"),
    Command("audit", "audit", "verify the provenance chain; show a train's story"),
    Command("cohort", "cohort", "synthetic lung cancer cohorts"),
    Command("completion", "completion", "print a shell completion script (bash, zsh or fish)"),
    Command("crds", "crds", "print the CRDs (Train, StationPolicy, TrainApproval)"),
    Command("demo", "demo", "run a whole station on this machine and send a train through it"),
    Command("dev", "dev", "development tools (a real local control plane)"),
    Command("load", "load", "bulk-load RDF into a named graph of the data store"),
    Command("login", "login", "sign in to the hospital's OpenID provider (for kubectl and pht)"),
    Command("credentials", "login", "print a kubeconfig exec credential (OpenID Connect)"),
    Command("operator", "operator", "run the station operator"),
    Command("held", "results", "results held for a steward"),
    Command("release", "results", "release a held result (stewards)"),
    Command("block", "results", "block a held result (stewards)"),
    Command("result", "results", "a train's result"),
    Command("reviews", "reviews", "image reviews and trusted reviewer keys; sign and verify"),
    Command("train", "train", "work on trains before shipping them"),
    Command(
        "validate", "validate", "validate Train, StationPolicy and TrainApproval manifests offline"
    ),
)


def _add_value_options(parser: argparse.ArgumentParser) -> None:
    """The global options that take a value (the command word comes after their values)."""
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


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    _add_value_options(parser)
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an unexpected error"
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {pht_contract.__version__}",
        help="print the station's version and exit",
    )


class _NoCommandWord(Exception):
    """The words before the command do not parse; the full parser will say why."""


class _CommandFinder(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NoCommandWord(message)


def command_word(argv: Sequence[str]) -> str | None:
    """The command a command line runs (``pht -n ns pending …`` → ``pending``), or None."""
    finder = _CommandFinder(add_help=False)
    _add_value_options(finder)
    finder.add_argument("command", nargs="?")
    try:
        known, _ = finder.parse_known_args(list(argv))
    except _NoCommandWord:
        return None
    return cast(str | None, known.command)


def build_parser(prog: str = PROG, only: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. By default every command is complete (help, completion scripts);
    with ``only``, just the module that registers that command word is imported (none for a
    word no command has), and every other command is a name with its help (enough for
    ``pht --help`` and for a typo's error).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Personal Health Train station for Kubernetes.",
    )
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = {c.module for c in COMMANDS if only is None or c.name == only}
    registered: set[str] = set()
    for command in COMMANDS:
        if command.module not in wanted:
            subparsers.add_parser(command.name, help=command.help, add_help=False)
        elif command.module not in registered:
            registered.add(command.module)
            module = importlib.import_module(f"{commands.__name__}.{command.module}")
            module.register(subparsers)
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
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog, only=command_word(words) or "")
    args = parser.parse_args(words)
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
