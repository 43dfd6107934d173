"""``pht completion bash|zsh|fish``: print a shell completion script for ``pht``.

The script is generated from the CLI's own parser (by shtab), so it always names the commands
and options this version has.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

import shtab

SHELLS: Final = ("bash", "zsh", "fish")
INSTALL_HINTS: Final = {
    "bash": "source <(pht completion bash)  # or save it in ~/.local/share/bash-completion/",
    "zsh": 'pht completion zsh > "${fpath[1]}/_pht"',
    "fish": "pht completion fish > ~/.config/fish/completions/pht.fish",
}


def completion_script(shell: str) -> str:
    from pht_cli.main import PROG, build_parser

    return str(shtab.complete(build_parser(PROG), shell=shell))


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
