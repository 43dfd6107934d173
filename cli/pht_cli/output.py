"""How listing commands print: an aligned table (default), JSON or YAML (``-o``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

FORMATS: Final = ("table", "json", "yaml")
#: Earlier spelling of ``table``, still accepted.
TEXT_ALIAS: Final = "text"


@dataclass(frozen=True)
class Column:
    """One table column: its heading, the item key it shows, and an optional width cap.

    ``value`` computes the cell from the whole item instead (JSON and YAML show items as they
    are, so computed cells appear only in the table).
    """

    heading: str
    key: str = ""
    width: int | None = None
    value: Callable[[dict[str, Any]], Any] | None = None

    def cell(self, item: dict[str, Any]) -> str:
        value = self.value(item) if self.value is not None else item.get(self.key)
        if value is None or value == "":
            text = "-"
        elif isinstance(value, list | tuple):
            text = "; ".join(str(v) for v in value) or "-"
        else:
            text = str(value)
        text = printable(text)
        return text[: self.width] if self.width else text


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape (``\\x1b``,
    ``\\n``, ``\\u202e``): a value from a Train (its requester's name, a message quoting its
    spec) can neither add a row to a table nor move the cursor over another."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=[*FORMATS, TEXT_ALIAS],
        default="table",
        help="output format: an aligned table (default), json or yaml",
    )


def render_table(
    items: Sequence[dict[str, Any]], columns: Sequence[Column], detail: str | None = None
) -> str:
    """Aligned columns; the last one is not padded. ``detail`` names a key shown indented."""
    rows = [[c.cell(item) for c in columns] for item in items]
    headings = [c.heading for c in columns]
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    lines = [line(headings)]
    for item, row in zip(items, rows, strict=True):
        lines.append(line(row))
        if detail and item.get(detail):
            lines.append(f"    {printable(str(item[detail]))}")
    return "\n".join(lines) + "\n"


def render_document(data: Any, fmt: str) -> str:
    """A whole document (not a table) as JSON or YAML."""
    if fmt == "yaml":
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return json.dumps(data, indent=1) + "\n"


def render(
    items: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    fmt: str,
    *,
    empty: str,
    detail: str | None = None,
) -> str:
    """``items`` in the format asked for; ``empty`` is the table's text when there are none."""
    if fmt in ("json", "yaml"):
        return render_document(list(items), fmt)
    if not items:
        return empty + "\n"
    return render_table(items, columns, detail)


def emit(
    items: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    fmt: str,
    *,
    empty: str,
    detail: str | None = None,
) -> None:
    print(render(items, columns, fmt, empty=empty, detail=detail), end="")
