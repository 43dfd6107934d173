"""The train: query survival, estimate a curve per stage and overall, upload one table.

Parameters (the Train's ``parameters`` JSON):

* ``timePoints`` — days at which to report survival (default one to five years, yearly);
* ``groupBy`` — ``"overallStage"`` (default) or ``"none"`` for one curve;
* ``query`` — the named query to run (default ``"survival"``); it selects ``?patient``,
  ``?days`` and ``?dead``, plus ``?stage`` when grouping by stage.

Small cells (few patients at risk late in follow-up) are not suppressed here: the station's
disclosure gate decides, with the policy the hospital chose.
"""

from kaplan_meier.estimators import kaplan_meier
from kaplan_meier.records import SurvivalRecord, read_records
from pht_train import (
    Cell,
    ParameterError,
    ResultManifest,
    Stage,
    TrainSession,
    count,
    group,
    statistic,
)

DEFAULT_TIME_POINTS = [365, 730, 1095, 1460, 1825]
GROUPINGS = {"overallStage": "stage", "none": None}
ALL = "All"

COLUMNS = [
    group("stage"),
    group("days"),
    count("at_risk"),
    count("events"),
    count("censored"),
    statistic("survival"),
    statistic("std_error"),
]


def time_points(train: TrainSession) -> list[float]:
    points = train.parameter("timePoints", list, DEFAULT_TIME_POINTS)
    if not points or len(points) > 200:
        raise ParameterError("timePoints holds 1 to 200 numbers of days")
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and p >= 0 for p in points):
        raise ParameterError("timePoints are non-negative numbers of days")
    return sorted({float(p) for p in points})


def curve_rows(records: list[SurvivalRecord], points: list[float]) -> list[list[Cell]]:
    """Table rows for each group, then for everyone (``All``)."""
    groups = sorted({r.group for r in records})
    selections = [(g, [r for r in records if r.group == g]) for g in groups if g != ALL]
    selections.append((ALL, records))
    rows: list[list[Cell]] = []
    for label, selected in selections:
        curve = kaplan_meier([r.days for r in selected], [r.dead for r in selected], points)
        for point in curve:
            rows.append(
                [
                    label,
                    int(point.days) if point.days.is_integer() else point.days,
                    point.at_risk,
                    point.events,
                    point.censored,
                    round(point.survival, 6),
                    round(point.std_error, 6),
                ]
            )
    return rows


def estimate(train: TrainSession) -> None:
    grouping = train.parameter("groupBy", str, "overallStage")
    if grouping not in GROUPINGS:
        raise ParameterError(f"groupBy is one of {', '.join(GROUPINGS)}")
    points = time_points(train)
    train.progress(10, Stage.QUERYING)
    result = train.query(train.parameter("query", str, "survival"))
    train.progress(50, Stage.COMPUTING)
    records, _skipped = read_records(list(result.rows), GROUPINGS[grouping])
    manifest = ResultManifest()
    manifest.add_table(
        "survival_by_stage", COLUMNS, curve_rows(records, points), cohort_size=len(records)
    )
    train.progress(90, Stage.UPLOADING)
    train.upload(manifest)
