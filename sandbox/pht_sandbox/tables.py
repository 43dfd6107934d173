"""Released result tables as aligned text, for the demo and ``pht train run-local``."""

from typing import Any

#: How a cell the disclosure gate suppressed (or an empty one) is shown.
SUPPRESSED = "·"


def _cell(value: Any) -> str:
    if value is None:
        return SUPPRESSED
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(table: dict[str, Any], max_rows: int | None = None) -> str:
    """The table's header and rows, right-aligned; at most ``max_rows`` rows (the CSV has all)."""
    header = [str(c["name"]) for c in table["columns"]]
    rows = [[_cell(v) for v in row] for row in table["rows"]]
    shown = rows if max_rows is None else rows[:max_rows]
    widths = [max([len(h), *(len(r[i]) for r in shown)]) for i, h in enumerate(header)]
    lines = [
        f"table {table['name']} (cohort {table['cohortSize']}, {len(rows)} rows; "
        f"{SUPPRESSED} = suppressed by the disclosure gate or empty)",
        "  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  " + "  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > len(shown):
        lines.append(f"  … {len(rows) - len(shown)} more rows in {table['name']}.csv")
    return "\n".join(lines)
