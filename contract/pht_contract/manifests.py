"""The typed result manifest: the only shape in which a result may leave a run.

Not free-form bytes: declared tables (group columns, count columns, the cohort size), summary
statistics with their n, model files in declared formats, and plots (PNG images the station
re-encodes before anyone sees them, always held for a steward). Unknown fields are refused and
cell strings are short category labels, so free text cannot ride along in a table; free-text
``messages`` exist but are always held for a steward.
"""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from pht_contract.base import ApiModel, Sha256Hex

RESULT_SCHEMA_VERSION = "pht.result/v1"
CATEGORY_LABEL = r"^[A-Za-z0-9][A-Za-z0-9 _.,:/+()<>=-]{0,63}$"
IDENTIFIER = r"^[a-z][a-z0-9_-]{0,62}$"
FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

Category = Annotated[str, Field(pattern=CATEGORY_LABEL, max_length=64)]
Cell = int | float | Category | None


class Column(ApiModel):
    name: str = Field(pattern=IDENTIFIER)
    #: Group: a category label; Count: a number of patients; Statistic: a derived number.
    role: Literal["Group", "Count", "Statistic"]


class ResultTable(ApiModel):
    model_config = ConfigDict(allow_inf_nan=False)

    name: str = Field(pattern=IDENTIFIER)
    kind: Literal["Aggregate", "RowLevel"] = "Aggregate"
    columns: list[Column] = Field(min_length=1, max_length=64)
    rows: list[list[Cell]] = Field(default_factory=list, max_length=100_000)
    #: Patients behind the table, as the algorithm claims; the gate cross-checks it.
    cohort_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _rows_match_columns(self) -> "ResultTable":
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique")
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"row {index} has {len(row)} cells, the table has {width} columns")
            for column, cell in zip(self.columns, row, strict=True):
                if column.role != "Group" and isinstance(cell, str):
                    raise ValueError(
                        f"row {index}: column {column.name!r} is a {column.role} column and "
                        "holds numbers only"
                    )
                if (
                    column.role == "Count"
                    and cell is not None
                    and (not isinstance(cell, int) or isinstance(cell, bool) or cell < 0)
                ):
                    raise ValueError(
                        f"row {index}: column {column.name!r} counts patients: whole numbers "
                        "of at least 0 only"
                    )
        return self

    def count_columns(self) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c.role == "Count"]


class Statistic(ApiModel):
    model_config = ConfigDict(allow_inf_nan=False)

    name: str = Field(pattern=IDENTIFIER)
    value: float
    #: Records contributing to the statistic.
    n: int = Field(ge=0)


class ModelFile(ApiModel):
    name: str = Field(pattern=FILE_NAME)
    format: Literal["safetensors", "onnx", "npy", "json", "pickle"]
    sha256: Sha256Hex
    size_bytes: int = Field(ge=0)
    #: The file itself, base64; the declared sha256 and size are checked against it.
    data_base64: str = Field(max_length=512 * 1024 * 1024)


#: A plot's bounds: its PNG file, each side in pixels, and plots per result.
MAX_PLOT_BYTES = 8 * 1024 * 1024
MAX_PLOT_SIDE = 4096
MAX_PLOTS = 4
#: A plot's title: one line of plain words, figures and punctuation (no markup characters).
PLOT_TITLE = r"^[A-Za-z0-9][A-Za-z0-9 _.,:;/+()%=?!'-]{0,119}$"


class PlotFile(ApiModel):
    """A picture the algorithm drew: a PNG file, which the station re-encodes and a steward
    looks at before it leaves."""

    name: str = Field(pattern=IDENTIFIER)
    title: str = Field(pattern=PLOT_TITLE, max_length=120)
    format: Literal["png"] = "png"
    #: The PNG file, base64 (4 characters for every 3 bytes).
    data_base64: str = Field(max_length=(MAX_PLOT_BYTES + 2) // 3 * 4)


class ResultManifest(ApiModel):
    schema_version: Literal["pht.result/v1"] = "pht.result/v1"
    tables: list[ResultTable] = Field(default_factory=list, max_length=32)
    statistics: list[Statistic] = Field(default_factory=list, max_length=1024)
    models: list[ModelFile] = Field(default_factory=list, max_length=16)
    #: Pictures the algorithm drew: never released automatically.
    plots: list[PlotFile] = Field(default_factory=list, max_length=MAX_PLOTS)
    #: Free text from the algorithm: never released automatically.
    messages: list[Annotated[str, Field(max_length=2048)]] = Field(
        default_factory=list, max_length=16
    )

    @model_validator(mode="after")
    def _plot_names_unique(self) -> "ResultManifest":
        names = [plot.name for plot in self.plots]
        if len(set(names)) != len(names):
            raise ValueError("plot names must be unique")
        return self
