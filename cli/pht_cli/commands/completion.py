"""``pht completion bash|zsh|fish``: print a shell completion script for ``pht``.

The script is generated from the CLI's own parser (by shtab), so it always names the commands
and options this version has.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import shtab

SHELLS: Final = ("bash", "zsh", "fish")
INSTALL_HINTS: Final = {
    "bash": "source <(pht completion bash)  # or save it in ~/.local/share/bash-completion/",
    "zsh": 'pht completion zsh > "${fpath[1]}/_pht"',
    "fish": "pht completion fish > ~/.config/fish/completions/pht.fish",
}


#: Options whose value is a file or a folder, by metavar, complete to paths.
FILE_METAVARS: Final = frozenset({"FILE", "PATH"})
DIR_METAVARS: Final = frozenset({"DIR"})


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def mark_paths(parser: argparse.ArgumentParser) -> None:
    """Tell shtab which options take a path, so the shell offers file or folder names."""
    for action in _actions(parser):
        if action.metavar in DIR_METAVARS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif action.metavar in FILE_METAVARS or action.type is Path:
            action.complete = shtab.FILE  # type: ignore[attr-defined]


def completion_script(shell: str) -> str:
    from pht_cli.main import PROG, build_parser

    parser = build_parser(PROG)
    mark_paths(parser)
    return str(shtab.complete(parser, shell=shell))


def run(args: argparse.Namespace) -> int:
    print(completion_script(args.shell), end="")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script for pht. To install it: "
        + "; ".join(f"{shell}: {hint}" for shell, hint in INSTALL_HINTS.items()),
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(handler=run)
