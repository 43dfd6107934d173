"""A command line imports only the module of the command it runs.

``pht operator`` is a long-running process: loading the station API, numpy, the RDF store and
the validators next to it would cost tens of MiB for nothing.
"""

from __future__ import annotations

import argparse
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from pht_cli import commands
from pht_cli.main import COMMANDS, build_parser, command_word, main

#: Modules the operator never uses; each is only imported by other commands.
NOT_FOR_THE_OPERATOR = (
    "pht_station_api",
    "pht_sandbox",
    "numpy",
    "pyoxigraph",
    "celpy",
    "jsonschema",
    "fastapi",
    "uvicorn",
    "shtab",
    "rich",
    "httpx",  # the operator's clients are httpx2 (httpx would also load its CLI extras)
)

#: Runs ``pht operator`` up to the point where its event loop would start, then prints the
#: names of the imported modules instead of running (no cluster needed).
OPERATOR_STARTUP = """
import asyncio, json, sys

def started(coroutine):
    coroutine.close()
    print(json.dumps(sorted(sys.modules)))

asyncio.run = started
from pht_cli.main import main
sys.exit(main(["operator", "--station-api-namespace", "pht-station"]))
"""


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_operator_starts_without_the_other_commands_modules(tmp_path: Path) -> None:
    script = tmp_path / "startup.py"
    script.write_text(OPERATOR_STARTUP)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout))
    assert "pht_operator.entrypoint" in loaded and "kopf" in loaded  # it did get that far
    tops = {name.split(".")[0] for name in loaded}
    assert tops.isdisjoint(NOT_FOR_THE_OPERATOR), sorted(tops & set(NOT_FOR_THE_OPERATOR))
    other_commands = {f"pht_cli.commands.{c.module}" for c in COMMANDS if c.module != "operator"}
    assert loaded.isdisjoint(other_commands), sorted(loaded & other_commands)


def test_every_command_module_is_registered() -> None:
    modules = {info.name for info in pkgutil.iter_modules(commands.__path__)}
    assert {command.module for command in COMMANDS} == modules


def test_the_lazy_parser_lists_the_same_commands_and_help_as_the_full_one() -> None:
    full = build_parser()
    for only in [None, "", *(command.name for command in COMMANDS)]:
        lazy = build_parser(only=only)
        assert lazy.format_help() == full.format_help(), only
        assert list(_subcommands(lazy).choices) == list(_subcommands(full).choices)


def test_a_command_built_alone_is_the_complete_command() -> None:
    full = _subcommands(build_parser()).choices
    for command in COMMANDS:
        alone = _subcommands(build_parser(only=command.name)).choices
        assert alone[command.name].format_help() == full[command.name].format_help()


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["operator", "--workers", "3"], "operator"),
        (["-n", "pending", "approve", "km"], "approve"),  # a namespace named like a command
        (["--kubeconfig", "k.yaml", "--debug", "pending"], "pending"),
        (["--kubeconfig=k.yaml", "--context", "c", "held"], "held"),
        (["--debug"], None),
        (["--kubeconfig"], None),  # the parser itself reports the missing value
        (["frobnicate", "x"], "frobnicate"),
    ],
)
def test_the_command_word_is_found_after_the_global_options(
    argv: list[str], word: str | None
) -> None:
    assert command_word(argv) == word


def test_an_unknown_command_is_a_usage_error_naming_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'frobnicate'" in error and "'operator'" in error


def test_a_command_is_parsed_with_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["-n", "ns1", "crds", "--help"])
    assert exited.value.code == 0
    assert "--out" in capsys.readouterr().out
