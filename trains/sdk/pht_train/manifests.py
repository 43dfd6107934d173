"""Build the typed result manifest, checked here with the station's own bounds.

A station accepts a result only as a typed manifest: aggregate tables whose columns declare
their role (``Group`` labels, ``Count`` of patients, derived ``Statistic``) plus the cohort
size, named statistics with their ``n``, model files in safe formats, PNG plots and free-text
messages (plots and messages are always held for a steward). Checking the same patterns and
bounds before upload turns a refused upload at the end of a long run into an error at the line
that built the bad table.
The SDK is a little stricter than the station where that catches mistakes (counts are
non-negative integers, numbers are finite, names are unique).
"""

import base64
import hashlib
import json
import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pht_train.constants import (
    CATEGORY_LABEL,
    FILE_NAME,
    IDENTIFIER,
    MAX_COLUMNS,
    MAX_MESSAGE_CHARS,
    MAX_MESSAGES,
    MAX_MODEL_BASE64_CHARS,
    MAX_MODELS,
    MAX_PLOT_BYTES,
    MAX_PLOTS,
    MAX_ROWS,
    MAX_STATISTICS,
    MAX_TABLES,
    MODEL_FORMATS,
    PLOT_TITLE,
    RESULT_SCHEMA_VERSION,
)
from pht_train.errors import ManifestError

Role = Literal["Group", "Count", "Statistic"]
ModelFormat = Literal["safetensors", "onnx", "npy", "json"]
Cell = int | float | str | None

_CATEGORY = re.compile(CATEGORY_LABEL)
_IDENTIFIER = re.compile(IDENTIFIER)
_FILE_NAME = re.compile(FILE_NAME)
_PLOT_TITLE = re.compile(PLOT_TITLE)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9 _.,:/+()<>=-]")


@dataclass(frozen=True)
class Column:
    name: str
    role: Role


def group(name: str) -> Column:
    """A column of category labels (stage, sex, a time point)."""
    return Column(name, "Group")


def count(name: str) -> Column:
    """A column of patient counts: the disclosure gate checks these cells."""
    return Column(name, "Count")


def statistic(name: str) -> Column:
    """A column of derived numbers (a survival probability, a mean)."""
    return Column(name, "Statistic")


@dataclass(frozen=True)
class ModelFile:
    name: str
    format: ModelFormat
    sha256: str
    size_bytes: int
    data: bytes

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "sha256": self.sha256,
            "sizeBytes": self.size_bytes,
            "dataBase64": base64.b64encode(self.data).decode("ascii"),
        }


def category_label(value: object) -> str:
    """Any value as a category label the station accepts (IRIs become their local name)."""
    text = str(value).strip()
    if "://" in text:
        text = re.split(r"[#/]", text.rstrip("/#"))[-1]
    text = _LABEL_CHARS.sub("_", text)[:64]
    if not text or not text[0].isalnum():
        text = ("x" + text)[:64]
    return text


class ResultManifest:
    """A result under construction; :meth:`wire` gives the JSON the station expects."""

    def __init__(self) -> None:
        self._tables: list[dict[str, Any]] = []
        self._statistics: list[dict[str, Any]] = []
        self._models: list[ModelFile] = []
        self._messages: list[str] = []
        self._plots: list[dict[str, str]] = []

    def add_table(
        self,
        name: str,
        columns: Sequence[Column],
        rows: Iterable[Sequence[Cell]],
        cohort_size: int,
    ) -> None:
        """An aggregate table; ``cohort_size`` is the number of patients behind it."""
        where = f"tables[{name!r}]"
        _check_identifier(name, where)
        if any(t["name"] == name for t in self._tables):
            raise ManifestError(f"{where}: a table with this name exists already")
        if len(self._tables) >= MAX_TABLES:
            raise ManifestError(f"{where}: at most {MAX_TABLES} tables")
        if not 1 <= len(columns) <= MAX_COLUMNS:
            raise ManifestError(f"{where}: between 1 and {MAX_COLUMNS} columns")
        names = [c.name for c in columns]
        for column in columns:
            _check_identifier(column.name, f"{where}.columns[{column.name!r}]")
            if column.role not in ("Group", "Count", "Statistic"):
                raise ManifestError(f"{where}.columns[{column.name!r}]: unknown role")
        if len(set(names)) != len(names):
            raise ManifestError(f"{where}: column names must be unique")
        checked = []
        for index, row in enumerate(rows):
            if index >= MAX_ROWS:
                raise ManifestError(f"{where}: at most {MAX_ROWS} rows")
            if len(row) != len(columns):
                raise ManifestError(
                    f"{where}.rows[{index}]: {len(row)} cells, the table has {len(columns)} columns"
                )
            checked.append(
                [
                    _check_cell(cell, column, f"{where}.rows[{index}].{column.name}")
                    for column, cell in zip(columns, row, strict=True)
                ]
            )
        self._tables.append(
            {
                "name": name,
                "kind": "Aggregate",
                "columns": [{"name": c.name, "role": c.role} for c in columns],
                "rows": checked,
                "cohortSize": _check_count(cohort_size, f"{where}.cohortSize"),
            }
        )

    def add_records(
        self,
        name: str,
        columns: Sequence[Column],
        records: Iterable[Mapping[str, Cell]],
        cohort_size: int,
    ) -> None:
        """A table from dicts (e.g. one per group), keyed by column name."""
        rows = []
        for index, record in enumerate(records):
            missing = [c.name for c in columns if c.name not in record]
            if missing:
                raise ManifestError(f"tables[{name!r}].rows[{index}]: no value for {missing}")
            rows.append([record[c.name] for c in columns])
        self.add_table(name, columns, rows, cohort_size)

    def add_statistic(self, name: str, value: float, n: int) -> None:
        """A summary number and the number of records it summarises."""
        where = f"statistics[{name!r}]"
        _check_identifier(name, where)
        if any(s["name"] == name for s in self._statistics):
            raise ManifestError(f"{where}: a statistic with this name exists already")
        if len(self._statistics) >= MAX_STATISTICS:
            raise ManifestError(f"{where}: at most {MAX_STATISTICS} statistics")
        self._statistics.append(
            {
                "name": name,
                "value": _check_number(value, f"{where}.value"),
                "n": _check_count(n, f"{where}.n"),
            }
        )

    def add_model(self, name: str, data: bytes, format: ModelFormat) -> ModelFile:
        """A model file; its sha256 and size are computed here. Held for a steward by default."""
        where = f"models[{name!r}]"
        if not isinstance(name, str) or not _FILE_NAME.match(name):
            raise ManifestError(f"{where}: a file name is letters, digits, '_', '.', '-'")
        if format not in MODEL_FORMATS:
            raise ManifestError(f"{where}: format must be one of {', '.join(MODEL_FORMATS)}")
        if any(m.name == name for m in self._models):
            raise ManifestError(f"{where}: a model with this name exists already")
        if len(self._models) >= MAX_MODELS:
            raise ManifestError(f"{where}: at most {MAX_MODELS} model files")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ManifestError(f"{where}: data must be bytes")
        data = bytes(data)
        if 4 * math.ceil(len(data) / 3) > MAX_MODEL_BASE64_CHARS:
            raise ManifestError(f"{where}: the file is larger than the station accepts")
        model = ModelFile(name, format, hashlib.sha256(data).hexdigest(), len(data), data)
        self._models.append(model)
        return model

    def add_plot(self, name: str, title: str, png: bytes) -> None:
        """A PNG picture (``figure.savefig(buffer, format="png")``): the station re-encodes it
        and always holds the result for a steward, who looks at it."""
        where = f"plots[{name!r}]"
        _check_identifier(name, where)
        if not isinstance(title, str) or not _PLOT_TITLE.match(title):
            raise ManifestError(
                f"{where}: a title is one line of 1-120 letters, digits, spaces and "
                "_.,:;/+()%=?!'- characters"
            )
        if any(p["name"] == name for p in self._plots):
            raise ManifestError(f"{where}: a plot with this name exists already")
        if len(self._plots) >= MAX_PLOTS:
            raise ManifestError(f"{where}: at most {MAX_PLOTS} plots")
        if not isinstance(png, bytes | bytearray | memoryview):
            raise ManifestError(f"{where}: the plot must be bytes")
        data = bytes(png)
        if not data.startswith(_PNG_SIGNATURE):
            raise ManifestError(f"{where}: a plot is a PNG file (save it with format='png')")
        if len(data) > MAX_PLOT_BYTES:
            raise ManifestError(f"{where}: the file is larger than {MAX_PLOT_BYTES} bytes")
        if data[12:16] == b"IHDR" and data[24:25] == b"\x10":
            raise ManifestError(
                f"{where}: 16-bit samples are refused by the station: save the plot with 8 bits "
                "per sample"
            )
        encoded = base64.b64encode(data).decode("ascii")
        self._plots.append({"name": name, "title": title, "dataBase64": encoded})

    def add_message(self, text: str) -> None:
        """Free text for the steward: never released automatically, so keep it short."""
        if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
            raise ManifestError(f"messages: a message is text of at most {MAX_MESSAGE_CHARS} chars")
        if len(self._messages) >= MAX_MESSAGES:
            raise ManifestError(f"messages: at most {MAX_MESSAGES} messages")
        self._messages.append(text)

    @property
    def empty(self) -> bool:
        return not (
            self._tables or self._statistics or self._models or self._plots or self._messages
        )

    def wire(self) -> dict[str, Any]:
        """The manifest as the station reads it (camelCase keys)."""
        return {
            "schemaVersion": RESULT_SCHEMA_VERSION,
            "tables": [dict(t) for t in self._tables],
            "statistics": [dict(s) for s in self._statistics],
            "models": [m.wire() for m in self._models],
            "plots": [dict(p) for p in self._plots],
            "messages": list(self._messages),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.wire(), allow_nan=False, separators=(",", ":")).encode()


def _check_identifier(name: object, where: str) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ManifestError(
            f"{where}: names start with a lower-case letter, then a-z 0-9 _ - (≤ 63 chars)"
        )


def _check_number(value: object, where: str) -> float | int:
    if isinstance(value, bool | str | bytes):
        raise ManifestError(f"{where}: must be a number")
    if not isinstance(value, int | float):
        try:
            value = operator.index(value)  # type: ignore[arg-type]  # NumPy integers
        except TypeError:
            try:
                value = float(value)  # type: ignore[arg-type]  # NumPy floats
            except (TypeError, ValueError):
                raise ManifestError(f"{where}: must be a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ManifestError(f"{where}: must be a finite number")
    return value


def _check_count(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise ManifestError(f"{where}: a count is a non-negative integer")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ManifestError(f"{where}: a count is a non-negative integer") from None
    if number < 0:
        raise ManifestError(f"{where}: a count is a non-negative integer")
    return number


def _check_cell(cell: object, column: Column, where: str) -> Cell:
    if cell is None:
        return None
    if column.role == "Count":
        return _check_count(cell, where)
    if column.role == "Group" and isinstance(cell, str):
        if not _CATEGORY.match(cell):
            raise ManifestError(
                f"{where}: a label is 1–64 letters, digits or ' _.,:/+()<>=-' (see category_label)"
            )
        return cell
    if isinstance(cell, str):
        raise ManifestError(f"{where}: a {column.role} column holds numbers only")
    return _check_number(cell, where)
