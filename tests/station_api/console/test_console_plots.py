"""Survival tables become step curves through the released points; suppressed rows are left
out, never interpolated; other tables are not drawn."""

from pht_contract.manifests import Column, ResultTable
from pht_station_api.console.plots import MARGIN, survival_plot


def _table(rows: list[list[object]]) -> ResultTable:
    return ResultTable.model_validate(
        {
            "name": "km",
            "columns": [
                Column(name="stage", role="Group").wire(),
                Column(name="days", role="Group").wire(),
                Column(name="survival", role="Statistic").wire(),
                Column(name="at_risk", role="Count").wire(),
            ],
            "rows": rows,
            "cohortSize": 100,
        }
    )


def test_one_step_curve_per_group_through_released_points() -> None:
    plot = survival_plot(
        _table(
            [
                ["I", "365", 0.9, 40],
                ["I", "730", 0.5, 20],
                ["II", "365", 0.8, 30],
                [None, None, None, None],  # a row the gate emptied
            ]
        )
    )
    assert plot is not None
    assert [s.label for s in plot.series] == ["I", "II"]
    assert plot.max_days == 730
    first = [tuple(map(float, p.split(","))) for p in plot.series[0].points.split()]
    # Starts at survival 1 on day 0; each drop is a vertical step at the point's day.
    assert first[0] == (MARGIN, MARGIN)
    assert len(first) == 5
    assert first[1][0] == first[2][0] and first[1][1] == MARGIN
    assert first[-1][0] == plot.width - MARGIN


def test_tables_without_survival_columns_or_points_are_not_drawn() -> None:
    counts = ResultTable.model_validate(
        {
            "name": "stages",
            "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
            "rows": [["I", 10]],
            "cohortSize": 10,
        }
    )
    assert survival_plot(counts) is None
    assert survival_plot(_table([[None, None, None, None]])) is None
