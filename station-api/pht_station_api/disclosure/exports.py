"""CSV export of released tables, safe to open in a spreadsheet.

A cell beginning with ``= + - @`` (or a tab or carriage return) is a formula to Excel and
LibreOffice; such cells get a leading apostrophe (OWASP's CSV-injection advice). Numbers are
written from the parsed values, so a number's minus sign cannot carry a formula and stays a
number; every text cell is checked.
"""

import csv
import io
import math

from pht_contract.manifests import Cell, ResultTable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def render_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return str(int(cell))
    if isinstance(cell, int):
        return str(cell)
    if isinstance(cell, float):
        return repr(cell) if math.isfinite(cell) else ""
    return neutralise(cell)


def table_csv(table: ResultTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c.name) for c in table.columns])
    for row in table.rows:
        writer.writerow([render_cell(cell) for cell in row])
    return out.getvalue()
