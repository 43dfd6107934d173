"""No command ends in a traceback: known errors are one line (exit 2), others exit 1."""

from __future__ import annotations

import sys

import pytest

from pht_cli.commands import crds
from pht_cli.main import main


def _broken(*_: object) -> str:
    raise RuntimeError("row 17: patient 4711 has stage IIIb")


def test_an_unexpected_error_is_one_line_without_its_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crds, "render_all", _broken)
    assert main(["crds"]) == 1
    err = capsys.readouterr().err
    assert err == "error: unexpected RuntimeError; re-run with --debug for details\n"


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crds, "render_all", _broken)
    assert main(["--debug", "crds"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: row 17" in err


def test_ctrl_c_exits_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*_: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(crds, "render_all", interrupted)
    assert main(["crds"]) == 130
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--once"],
        ["demo", "federated", "--once"],
        ["dev", "cluster", "--once"],
        ["train", "run-local", "trains/examples/kaplan-meier"],
    ],
)
def test_commands_that_need_the_station_in_a_box_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "pht_sandbox"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pht_sandbox", None)  # not importable
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "error: the station in a box is not installed: pip install pht-sandbox "
        "(or, in a checkout, pip install -e sandbox)\n"
    )
    assert "LOCAL RUN" not in captured.out  # nothing started before the check
