"""Survival tables drawn as plots on the result page: inline SVG, numbers only, no script.

A table with ``days`` and ``survival`` columns is drawn as one step curve per group, through
the points the gate would release; rows the gate suppressed are left out, never interpolated
(the table next to the plot marks them). Group labels go into the page as escaped text.
"""

from dataclasses import dataclass
from typing import Final

from pht_contract.manifests import ResultTable

WIDTH: Final = 640
HEIGHT: Final = 300
MARGIN: Final = 40
#: Colour-blind-safe line colours (Okabe–Ito), cycled over the groups.
COLOURS: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


@dataclass(frozen=True)
class Series:
    label: str
    points: str
    colour: str


@dataclass(frozen=True)
class Plot:
    table: str
    width: int
    height: int
    margin: int
    max_days: float
    series: list[Series]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]


def _number(value: object) -> float | None:
    """A number, also one written as a group label (``"365"``); ``None`` otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None
    return number if number is not None and number == number else None


def survival_plot(table: ResultTable) -> Plot | None:
    """The table as a plot, or ``None`` when it is not a survival table or has no points."""
    names = [c.name for c in table.columns]
    if not {"days", "survival"} <= set(names):
        return None
    day_at, survival_at = names.index("days"), names.index("survival")
    groups = [i for i, c in enumerate(table.columns) if c.role == "Group" and c.name != "days"]
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in table.rows:
        day, survival = _number(row[day_at]), _number(row[survival_at])
        if day is None or survival is None or not 0.0 <= survival <= 1.0:
            continue
        label = " / ".join(str(row[i]) for i in groups) if groups else "All"
        curves.setdefault(label, []).append((day, survival))
    if not curves:
        return None
    max_days = max(day for points in curves.values() for day, _ in points) or 1.0
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def x(day: float) -> float:
        return MARGIN + inner_w * day / max_days

    def y(survival: float) -> float:
        return MARGIN + inner_h * (1.0 - survival)

    series = []
    for index, (label, points) in enumerate(sorted(curves.items())):
        coords = [(x(0.0), y(1.0))]
        level = 1.0
        for day, survival in sorted(points):
            coords.append((x(day), y(level)))
            coords.append((x(day), y(survival)))
            level = survival
        text = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        series.append(Series(label, text, COLOURS[index % len(COLOURS)]))
    x_ticks = [(x(max_days * f), f"{max_days * f:.0f}") for f in (0, 0.25, 0.5, 0.75, 1)]
    y_ticks = [(y(f), f"{f:.2f}") for f in (0, 0.25, 0.5, 0.75, 1)]
    return Plot(table.name, WIDTH, HEIGHT, MARGIN, max_days, series, x_ticks, y_ticks)
