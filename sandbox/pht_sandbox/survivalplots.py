"""Kaplan–Meier figures of released survival tables, for the demo's output.

A released table gives survival only at its time points (a station-computed table: the grid fixed
at approval), so the figure draws the curve as a step function through those points — each
step at the point where the drop was measured — with the 95 % confidence band shaded when the
table has one (``lower``/``upper``), and the numbers at risk in a table under the axis. Points the
disclosure rules suppressed are never interpolated: the curve is drawn dotted across them and the
span is hatched, and the at-risk table shows ``–`` there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

#: How a suppressed number at risk is shown in the table under the axis.
SUPPRESSED_AT_RISK: Final = "–"


@dataclass
class Curve:
    """One group's points: day, survival, its band and the number at risk (``None``: suppressed)."""

    label: str
    days: list[float] = field(default_factory=list)
    survival: list[float | None] = field(default_factory=list)
    lower: list[float | None] = field(default_factory=list)
    upper: list[float | None] = field(default_factory=list)
    at_risk: list[int | None] = field(default_factory=list)


def survival_curves(table: dict[str, Any]) -> list[Curve] | None:
    """The table's curves by group (one ``All`` curve without a group column), or ``None``
    when it is not a survival table (no ``days`` and ``survival`` columns)."""
    names = [str(c["name"]) for c in table["columns"]]
    if not {"days", "survival"} <= set(names):
        return None
    groups = [
        i for i, c in enumerate(table["columns"]) if c["role"] == "Group" and c["name"] != "days"
    ]
    index = {name: names.index(name) for name in names}

    def cell(row: list[Any], name: str) -> Any:
        return row[index[name]] if name in index else None

    curves: dict[str, Curve] = {}
    for row in table["rows"]:
        day = cell(row, "days")
        if day is None:
            continue  # a whole row emptied (group labels included): nothing to place
        label = " / ".join(str(row[i]) for i in groups) if groups else "All"
        curve = curves.setdefault(label, Curve(label))
        curve.days.append(float(day))
        curve.survival.append(_number(cell(row, "survival")))
        curve.lower.append(_number(cell(row, "lower")))
        curve.upper.append(_number(cell(row, "upper")))
        at_risk = cell(row, "at_risk")
        curve.at_risk.append(int(at_risk) if isinstance(at_risk, int | float) else None)
    return [curves[k] for k in sorted(curves, key=lambda k: (k == "All", k))]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def plot_survival(table: dict[str, Any], path: Path, title: str) -> Path | None:
    """A Kaplan–Meier figure of ``table`` at ``path``; ``None`` when it is no survival table or
    no point of it was released."""
    curves = survival_curves(table)
    if not curves or not any(v is not None for c in curves for v in c.survival):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = sorted({day for curve in curves for day in curve.days})
    figure = plt.figure(figsize=(7.5, 5.2 + 0.22 * len(curves)), dpi=110)
    axes = figure.add_axes((0.1, 0.16 + 0.045 * len(curves), 0.86, 0.74 - 0.045 * len(curves)))
    for curve in curves:
        _draw(axes, curve, emphasised=curve.label == "All")
    axes.set_xlim(0, grid[-1] * 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xticks(grid)
    axes.tick_params(axis="x", labelsize=7)
    axes.set_xlabel("days since diagnosis")
    axes.set_ylabel("overall survival (Kaplan–Meier)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    _at_risk_table(figure, axes, curves, grid)
    figure.text(
        0.01,
        0.005,
        "shaded: 95 % confidence band · hatched, dotted: points suppressed by the disclosure "
        f"rules · {SUPPRESSED_AT_RISK}: suppressed",
        fontsize=6.5,
    )
    figure.savefig(path)
    plt.close(figure)
    return path


def _draw(axes: Any, curve: Curve, emphasised: bool) -> None:
    """Steps from (0, 1) through the released points; dotted and hatched across suppressed ones."""
    days = [0.0, *curve.days]
    survival = [1.0, *curve.survival]
    lower = [1.0, *curve.lower]
    upper = [1.0, *curve.upper]
    width = 2.4 if emphasised else 1.5
    color = "black" if emphasised else None
    line = None
    released = [i for i, value in enumerate(survival) if value is not None]
    for previous, current in itertools.pairwise(released):
        xs = [days[previous], days[current], days[current]]
        ys = [survival[previous], survival[previous], survival[current]]
        gap = current - previous > 1
        (line,) = axes.plot(
            xs,
            ys,
            linestyle=":" if gap else "-",
            linewidth=width,
            color=color if line is None else line.get_color(),
            label=curve.label if line is None else None,
        )
        if gap:
            axes.axvspan(
                days[previous], days[current], color=line.get_color(), alpha=0.06, hatch="//"
            )
        low, high = lower[previous], upper[previous]
        if low is not None and high is not None:
            axes.fill_between(
                [days[previous], days[current]], low, high, color=line.get_color(), alpha=0.12
            )
    if line is None and released:
        axes.plot([], [], linewidth=width, color=color, label=f"{curve.label} (all suppressed)")


def _at_risk_table(figure: Any, axes: Any, curves: list[Curve], grid: list[float]) -> None:
    """Numbers at risk at each time point, one row per group, under the axis."""
    box = axes.get_position()
    left, right = axes.get_xlim()
    figure.text(0.01, box.y0 - 0.075, "at risk", fontsize=7, weight="bold")
    for row, curve in enumerate(curves):
        y = box.y0 - 0.075 - 0.045 * (row + 1)
        figure.text(0.01, y, curve.label[:12], fontsize=7)
        by_day = dict(zip(curve.days, curve.at_risk, strict=True))
        for day in grid:
            x = box.x0 + box.width * (day - left) / (right - left)
            value = by_day.get(day)
            text = SUPPRESSED_AT_RISK if value is None else str(value)
            figure.text(x, y, text, fontsize=7, ha="center")
