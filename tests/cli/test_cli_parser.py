"""Every command and option explains itself; the completion scripts cover every command."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pht_cli.main import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: str = "pht") -> Iterator[tuple[str, object]]:
    """(where, action) for every action of every parser in the tree."""
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path}{name}"
                yield from _commands(sub, f"{path}{name} ")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for where, action in _walk(build_parser()):
        assert isinstance(action, argparse.Action)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if not (choice.help or "").strip():
                    missing.append(f"{where} {choice.dest}")
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not (action.help or "").strip():
            missing.append(f"{where}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_walk_finds_the_nested_commands() -> None:
    commands = set(_commands(build_parser()))
    assert {"pending", "held", "result get", "audit show", "completion", "dev cluster"} <= (
        commands
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_completion_script_is_valid_and_names_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    path = tmp_path / "pht.bash"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    for command in _commands(build_parser()):
        assert command.split()[-1] in script, command
    # options that take a file complete to file names
    assert "_shtab_pht_pending___kubeconfig_COMPGEN=_shtab_compgen_files" in script
    assert "_shtab_pht_crds___out_COMPGEN=_shtab_compgen_dirs" in script
    # the script works: completing "pht pen" offers "pending"
    probe = (
        f"source {path}; COMP_WORDS=(pht pen); COMP_CWORD=1; COMP_LINE='pht pen'; "
        "COMP_POINT=${#COMP_LINE}; _shtab_pht pht pen pht; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["pending"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_top_level_command(
    capsys: pytest.CaptureFixture[str], shell: str
) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in _commands(build_parser()):
        if " " not in command:
            assert command in script, command


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["completion", "tcsh"])
    assert exit_info.value.code == 2


def test_version_is_the_one_pyproject_declares(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.split() == ["pht", declared]
