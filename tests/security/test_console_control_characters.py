"""A researcher's text on the steward's terminal: ``pht pending`` lists it, never obeys it.

The requester's name is free text the researcher types into the Train, and condition messages
quote the spec (a graph IRI may hold an escape character). Written raw to a terminal, a line
feed forges a row of the approval queue (a Train that does not exist, or another image), a
carriage return or an ANSI sequence overwrites a row the steward is about to approve. Every
such character reaches the terminal as a visible escape instead.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

_CLI_TESTS = str(Path(__file__).resolve().parent.parent / "cli")
if _CLI_TESTS not in sys.path:
    sys.path.insert(0, _CLI_TESTS)

from cli_kit import TRAINS_PATH, Recorder, serving, train, train_list, write_kubeconfig  # noqa: E402

from pht_cli.main import main  # noqa: E402

NAMESPACE = "pht-requests"
FORGED_ROW = (
    f"{NAMESPACE}  trusted-train  {'b' * 12}  Dr. Trusted (umc)  registry.example.org/trusted:1"
)
HOSTILE_NAMES = {
    "line feed": f"Dr. Mallory\n{FORGED_ROW}",
    "carriage return": f"Dr. Mallory\r{FORGED_ROW}",
    "cursor up and erase": "Dr. Mallory\x1b[1A\x1b[2K\x1b[1A\x1b[2K",
    "next line (C1)": f"Dr. Mallory\x85{FORGED_ROW}",
    "line separator": f"Dr. Mallory\u2028{FORGED_ROW}",
    "right-to-left override": "Dr. Mallory\u202e1:live/km",
    "terminal title": "Dr. Mallory\x1b]0;all approved\x07",
}


@pytest.fixture
def server() -> Iterator[Recorder]:
    with serving() as recorder:
        yield recorder


def _is_control(char: str) -> bool:
    return char != "\n" and unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_a_requester_name_cannot_forge_or_hide_a_row(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    hostile = train(
        NAMESPACE, "km", "AwaitingApproval", requester={"name": name, "organisation": "umc"}
    )
    hostile["status"]["conditions"][0]["message"] = f"graph urn:pht:{name} is not allowed"
    honest = train(NAMESPACE, "km2", "AwaitingApproval")
    server.answer("GET", TRAINS_PATH.format(ns=NAMESPACE), 200, train_list(honest, hostile))
    config = write_kubeconfig(
        tmp_path / "k.yaml", server.url, user={"token": "steward"}, namespace=NAMESPACE
    )
    assert main(["pending", "--kubeconfig", str(config), "-v"]) == 0
    out = capsys.readouterr().out
    assert not [char for char in out if _is_control(char)]
    lines = out.splitlines()
    # The heading, and for each Train its row and what it is missing: nothing more.
    assert len(lines) == 5
    assert [line.split()[1] for line in (lines[1], lines[3])] == ["km2", "km"]
    assert "trusted-train" not in lines[1] + lines[2]


def test_an_error_message_quoting_a_train_stays_one_visible_line(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An API server's refusal may quote the Train (a policy's message): one line, escaped."""
    server.answer(
        "GET",
        TRAINS_PATH.format(ns=NAMESPACE),
        403,
        {
            "kind": "Status",
            "code": 403,
            "reason": "Forbidden",
            "message": "trains is forbidden: Dr. Mallory\x1b[2K\rall approved\u202e",
        },
    )
    config = write_kubeconfig(
        tmp_path / "k.yaml", server.url, user={"token": "steward"}, namespace=NAMESPACE
    )
    assert main(["pending", "--kubeconfig", str(config)]) != 0
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert not [char for char in err if _is_control(char)]
