"""A setting given as a value or as a file: the file wins and is read at each call."""

from pathlib import Path

from pht_contract.filevalues import value_or_file


def test_the_file_wins_over_the_value_and_is_reread(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("first\n", encoding="utf-8")
    assert value_or_file("inline", secret) == "first"
    secret.write_text("rotated", encoding="utf-8")
    assert value_or_file("inline", secret) == "rotated"


def test_the_value_counts_without_a_file() -> None:
    assert value_or_file("inline", None) == "inline"


def test_nothing_given_or_an_empty_file_is_none(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("  \n", encoding="utf-8")
    assert value_or_file(None, None) is None
    assert value_or_file("", None) is None
    assert value_or_file("inline", empty) is None
