"""Kaplan–Meier tables on the approved grid, and the rule on the drops in numbers at risk."""

from collections.abc import Mapping, Sequence
from itertools import combinations

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter  # type: ignore[import-untyped]

from pht_contract.aggregates import AggregateResult, AggregateSpec, AggregateStatus
from pht_contract.policies import DisclosurePolicy, ReleasableVariable
from pht_station_api.aggregates.answers import Answer, Value, died, label, number, read_answer
from pht_station_api.aggregates.survival import kaplan_meier, kaplan_meier_table, released_points
from tests.station_api.aggregates.conftest import answer_of, example_query

Row = Mapping[str, Value]
K = 5
POLICY = DisclosurePolicy(
    min_cohort=10,
    min_cell_count=K,
    releasable_variables=[
        ReleasableVariable(name="stage", values=["I", "II", "IIIa", "IIIb", "missing"]),
        ReleasableVariable(name="sex", values=["male", "female", "missing"]),
        ReleasableVariable(name="days", minimum=0, maximum=36525),
    ],
)
GRID = {"stepDays": 182, "endDays": 1825}


def km_spec(
    *by: str, step: int = 182, end: int = 1825, overall: bool | None = None
) -> AggregateSpec:
    return AggregateSpec(
        name="survival",
        query="survival",
        kind="KaplanMeier",
        by=list(by),
        survival={"time": "days", "event": "dead"},
        grid={"stepDays": step, "endDays": end},
        overall=overall,
    )


def answer(rows: Sequence[Row], *extra: str) -> Answer:
    patients = tuple(
        {"patient": f"https://h.example/p/{index}", **row} for index, row in enumerate(rows)
    )
    return Answer(("patient", "days", "dead", *extra), patients, 0)


def follow(days: float, dead: bool, **labels: str) -> Row:
    return {"days": float(days), "dead": 1.0 if dead else 0.0, **labels}


def column(result: AggregateResult, name: str) -> list[object]:
    assert result.table is not None
    index = [c.name for c in result.table.columns].index(name)
    return [row[index] for row in result.table.rows]


def rules_by_row(result: AggregateResult) -> dict[int, str]:
    assert all(cell.column is None for cell in result.suppressed)
    return {cell.row: cell.rule for cell in result.suppressed}


@pytest.fixture(scope="module")
def survival_answer(cohort_store: pyoxigraph.Store) -> Answer:
    return read_answer(
        answer_of(cohort_store, example_query("kaplan-meier", "survival")), "patient"
    )


def _follow_up(answer: Answer) -> list[tuple[float, bool]]:
    pairs = []
    for patient in answer.patients:
        days, death = number(patient.get("days")), died(patient.get("dead"))
        if days is not None and days >= 0 and death is not None:
            pairs.append((days, death))
    return pairs


def test_the_overall_curve_matches_lifelines_and_most_points_are_released(
    survival_answer: Answer,
) -> None:
    result = kaplan_meier_table(km_spec(), survival_answer, {}, POLICY)
    assert result.status is AggregateStatus.RELEASED and result.table is not None
    assert [c.name for c in result.table.columns] == [
        "days", "at_risk", "left", "survival", "lower", "upper",
    ]  # fmt: skip
    assert [c.role for c in result.table.columns] == [
        "Group", "Count", "Count", "Statistic", "Statistic", "Statistic",
    ]  # fmt: skip
    pairs = _follow_up(survival_answer)
    assert result.table.cohort_size == len(pairs) >= 250
    grid = list(range(182, 1826, 182))
    assert column(result, "days") == grid
    fitter = KaplanMeierFitter().fit([d for d, _ in pairs], [e for _, e in pairs])
    expected = fitter.survival_function_at_times(grid).to_numpy()
    interval = fitter.confidence_interval_survival_function_
    released = [row for row in range(len(grid)) if row not in rules_by_row(result)]
    assert len(released) >= 0.8 * len(grid)
    for row in released:
        at = interval.index[interval.index <= grid[row]].max()
        assert column(result, "survival")[row] == pytest.approx(expected[row], rel=1e-5)
        assert column(result, "lower")[row] == pytest.approx(interval.loc[at].iloc[0], rel=1e-5)
        assert column(result, "upper")[row] == pytest.approx(interval.loc[at].iloc[1], rel=1e-5)
        assert column(result, "at_risk")[row] == sum(1 for d, _ in pairs if d > grid[row])


def test_left_is_the_drop_since_the_previous_released_point(survival_answer: Answer) -> None:
    result = kaplan_meier_table(km_spec("stage"), survival_answer, {}, POLICY)
    assert result.table is not None
    stages = column(result, "stage")
    at_risk, left = column(result, "at_risk"), column(result, "left")
    pairs_by_stage: dict[str, list[float]] = {}
    for patient in survival_answer.patients:
        days = number(patient.get("days"))
        if days is not None and died(patient.get("dead")) is not None:
            pairs_by_stage.setdefault(label(patient.get("stage")) or "missing", []).append(days)
    previous: dict[object, int] = {}
    for stage, risk, gone in zip(stages, at_risk, left, strict=True):
        if risk is None:
            assert gone is None
            continue
        assert isinstance(risk, int) and isinstance(gone, int) and isinstance(stage, str)
        start = previous.get(stage, len(pairs_by_stage[stage]))
        assert gone == start - risk >= K and risk >= K
        previous[stage] = risk


def test_a_small_drop_is_held_back_and_accumulates_into_the_next_point() -> None:
    # 30 patients; 3 leave before day 10, 4 more before day 20, 10 more before day 30.
    rows = [follow(5, True)] * 2 + [follow(6, False)] + [follow(15, True)] * 4
    rows += [follow(25, True)] * 10 + [follow(100, False)] * 13
    result = kaplan_meier_table(km_spec(step=10, end=40), answer(rows), {}, POLICY)
    assert column(result, "days") == [10, 20, 30, 40]
    assert column(result, "at_risk") == [None, 23, 13, None]
    assert column(result, "left") == [None, 7, 10, None]
    assert rules_by_row(result) == {0: "SurvivalDrop", 3: "SurvivalDrop"}
    assert column(result, "survival")[0] is None and column(result, "days")[0] == 10
    assert result.rule == "SurvivalDrop"
    survival = column(result, "survival")
    assert survival[1] == pytest.approx((28 / 30) * (23 / 27), rel=1e-5)


def test_a_point_with_fewer_than_k_at_risk_is_emptied() -> None:
    rows = [follow(5, True)] * 10 + [follow(15, True)] * 6 + [follow(100, False)] * 4
    result = kaplan_meier_table(km_spec(step=10, end=20), answer(rows), {}, POLICY)
    assert column(result, "at_risk") == [10, None]
    assert rules_by_row(result) == {1: "SurvivalDrop"}


def test_a_group_below_the_minimum_cohort_is_emptied_entirely() -> None:
    rows = [follow(5 + i, i % 2 == 0, sex="male") for i in range(40)]
    rows += [follow(5 + i, True, sex="female") for i in range(40)]
    rows += [follow(50, True, sex="missing")] * 9
    result = kaplan_meier_table(km_spec("sex", step=10, end=30), answer(rows, "sex"), {}, POLICY)
    rules = rules_by_row(result)
    assert [rules.get(row) for row in (6, 7, 8)] == ["MinCohort"] * 3
    assert column(result, "at_risk")[6:] == [None] * 3
    assert column(result, "sex") == ["male"] * 3 + ["female"] * 3 + ["missing"] * 3


def test_one_patient_in_a_group_is_hidden_with_a_complementary_curve() -> None:
    rows = [follow(5 + i, i % 2 == 0, sex="male") for i in range(40)]
    rows += [follow(5 + i, True, sex="female") for i in range(30)]
    rows += [follow(12, True, sex="missing")]
    result = kaplan_meier_table(km_spec("sex", step=10, end=30), answer(rows, "sex"), {}, POLICY)
    rules = rules_by_row(result)
    # The lone patient's group is emptied; the female curve (the smaller) goes with it, or
    # the cohort size less the male group's size would tell the lone patient is there.
    assert [rules.get(row) for row in range(9)] == [None] * 3 + ["Complementary"] * 3 + [
        "MinCohort"
    ] * 3
    assert result.table is not None and result.table.cohort_size == 71


def test_patients_whose_follow_up_cannot_be_read_are_left_out() -> None:
    unreadable: list[Row] = [{"days": -5.0, "dead": 1.0}, {"days": "soon", "dead": 1.0}]
    unreadable += [{"days": 30.0, "dead": "maybe"}, {"days": 30.0}, {"dead": 1.0}]
    rows = [follow(10 + i, i % 3 == 0) for i in range(40)] + unreadable + unreadable[:2]
    result = kaplan_meier_table(km_spec(step=10, end=50), answer(rows), {}, POLICY)
    assert result.left_out == 7
    assert result.table is not None and result.table.cohort_size == 40


def test_a_label_not_listed_is_left_out() -> None:
    rows = [follow(10 + i, True, stage="I") for i in range(30)]
    rows += [follow(10 + i, True, stage="Patient 42 Jane Doe") for i in range(6)]
    result = kaplan_meier_table(
        km_spec("stage", step=10, end=20), answer(rows, "stage"), {}, POLICY
    )
    assert result.left_out == 6
    assert "Jane" not in result.model_dump_json()


def test_huge_follow_up_is_read_as_beyond_the_grid() -> None:
    rows = [follow(1 + i, True) for i in range(30)] + [follow(1e300, False)] * 10
    result = kaplan_meier_table(km_spec(step=10, end=30), answer(rows), {}, POLICY)
    assert column(result, "at_risk") == [30, 20, 10]


def test_an_answer_without_patients_is_withheld() -> None:
    empty = Answer(("patient", "days", "dead"), (), 0)
    result = kaplan_meier_table(km_spec(), empty, {}, POLICY)
    assert result.status is AggregateStatus.WITHHELD and result.rule == "NoPatients"


def test_a_cohort_below_the_minimum_is_withheld() -> None:
    rows = [follow(10 + i, True) for i in range(9)]
    result = kaplan_meier_table(km_spec(), answer(rows), {}, POLICY)
    assert result.status is AggregateStatus.WITHHELD and result.rule == "MinCohort"


def test_survival_columns_the_answer_lacks_fail() -> None:
    data = Answer(("patient", "days"), ({"patient": "https://h.example/p/1", "days": 1.0},), 0)
    result = kaplan_meier_table(km_spec(), data, {}, POLICY)
    assert result.status is AggregateStatus.FAILED and result.rule == "UnknownVariable"


def test_a_time_grid_label_cannot_be_a_group() -> None:
    result = kaplan_meier_table(km_spec("days"), answer([follow(1, True)] * 20), {}, POLICY)
    assert result.status is AggregateStatus.FAILED and result.rule == "NotCategorical"


def test_the_estimate_and_interval_match_lifelines_with_ties_and_censoring() -> None:
    pairs = [(5.0, True), (10.0, False), (10.0, True), (20.0, True), (30.0, False), (40.0, True)]
    pairs += [(10.0, True), (25.0, False), (35.0, True), (45.0, False)]
    curve = kaplan_meier(pairs, [5, 10, 20, 30, 40])
    fitter = KaplanMeierFitter().fit([d for d, _ in pairs], [e for _, e in pairs])
    interval = fitter.confidence_interval_survival_function_
    for point in curve:
        assert point.survival == pytest.approx(
            fitter.survival_function_at_times(point.days).iloc[0], rel=1e-12
        )
        assert point.lower == pytest.approx(interval.loc[float(point.days)].iloc[0], rel=1e-9)
        assert point.upper == pytest.approx(interval.loc[float(point.days)].iloc[1], rel=1e-9)
        assert point.at_risk == sum(1 for d, _ in pairs if d > point.days)


follow_ups = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400).map(float), st.booleans()),
    min_size=0,
    max_size=80,
)


@settings(max_examples=200)
@given(pairs=follow_ups, k=st.integers(min_value=1, max_value=8))
def test_released_numbers_at_risk_never_differ_by_fewer_than_k(
    pairs: list[tuple[float, bool]], k: int
) -> None:
    curve = kaplan_meier(pairs, list(range(30, 361, 30)))
    released = [curve[index].at_risk for index in released_points(curve, len(pairs), k)]
    assert all(value >= k for value in released)
    for first, second in combinations([len(pairs), *released], 2):
        assert first - second == 0 or abs(first - second) >= k


@settings(max_examples=100)
@given(
    groups=st.lists(follow_ups, min_size=2, max_size=2),
    k=st.integers(min_value=2, max_value=6),
)
def test_every_released_row_is_the_true_curve_and_passes_the_rule(
    groups: list[list[tuple[float, bool]]], k: int
) -> None:
    policy = POLICY.model_copy(update={"min_cell_count": k, "min_cohort": 5})
    rows = [
        follow(days, dead, sex=sex)
        for sex, pairs in zip(("male", "female"), groups, strict=True)
        for days, dead in pairs
    ]
    result = kaplan_meier_table(km_spec("sex", step=60, end=360), answer(rows, "sex"), {}, policy)
    if result.status is not AggregateStatus.RELEASED:
        return
    for sex, pairs in zip(("male", "female"), groups, strict=True):
        truth = kaplan_meier(pairs, list(range(60, 361, 60)))
        last = len(pairs)
        for row, point in enumerate(truth):
            index = (0 if sex == "male" else 6) + row
            risk = column(result, "at_risk")[index]
            if risk is None:
                continue
            assert risk == point.at_risk >= k and last - point.at_risk >= k
            assert column(result, "left")[index] == last - point.at_risk
            last = point.at_risk


def test_a_grid_with_more_rows_than_the_policy_allows_fails() -> None:
    policy = POLICY.model_copy(update={"max_labelled_rows_per_result": 20})
    rows = [follow(1 + i, True, sex="male") for i in range(30)]
    spec = km_spec("sex", step=10, end=70)  # 3 groups of 7 points
    result = kaplan_meier_table(spec, answer(rows, "sex"), {}, policy)
    assert result.status is AggregateStatus.FAILED and result.rule == "TooManyRows"
    result = kaplan_meier_table(km_spec(step=10, end=70), answer(rows, "sex"), {}, policy)
    assert result.status is AggregateStatus.RELEASED


def _by_label(result: AggregateResult) -> dict[str, list[int | None]]:
    """Each curve's numbers at risk, as a reader of the released table sees them."""
    curves: dict[str, list[int | None]] = {}
    for group, risk in zip(column(result, "sex"), column(result, "at_risk"), strict=True):
        curves.setdefault(str(group), []).append(risk if isinstance(risk, int) else None)
    return curves


def _sizes(result: AggregateResult) -> dict[str, int]:
    """The group sizes a reader recovers: at_risk + left at a curve's first released point."""
    sizes: dict[str, int] = {}
    labels, risks, lefts = column(result, "sex"), column(result, "at_risk"), column(result, "left")
    for group, risk, left in zip(labels, risks, lefts, strict=True):
        if isinstance(risk, int) and isinstance(left, int):
            sizes.setdefault(str(group), risk + left)
    return sizes


def test_the_overall_curve_is_released_where_it_gives_back_nothing_hidden() -> None:
    rows = [follow(5 + i, i % 2 == 0, sex="male") for i in range(40)]
    rows += [follow(5 + 2 * i, True, sex="female") for i in range(30)]
    result = kaplan_meier_table(
        km_spec("sex", step=10, end=40, overall=True), answer(rows, "sex"), {}, POLICY
    )
    curves = _by_label(result)
    # missing (no patient) is hidden and female goes with it; so the overall curve stands
    # beside male alone and gives back female + missing, which must pass the rule too.
    assert curves["female"] == [None] * 4 and curves["missing"] == [None] * 4
    assert curves["male"] == [34, 24, 14, None]  # 4 left after day 40: fewer than k
    # female + missing: 27, 22, 17, 12 at risk. Day 10 would give back a drop of 3 from the
    # 30 they start with; day 40 would give back male's held-back point.
    assert curves["All"] == [None, 46, 31, None]
    rules = rules_by_row(result)
    assert [rules.get(row) for row in range(12, 16)] == [
        "Complementary",
        None,
        None,
        "Complementary",
    ]
    assert result.table is not None and result.table.cohort_size == 70
    overall_rows = [row for row in result.table.rows if row[0] == "All"]
    assert overall_rows[1][3] == 70 - 46 and overall_rows[2][3] == 46 - 31  # left


def test_the_overall_curve_is_emptied_where_a_group_is_not_released() -> None:
    # Male loses 5, then 1 a step for four steps, then 6: its points on days 20 to 50 are held
    # back until the drop reaches k on day 60. Every other step loses at least k everywhere.
    male = [5.0] * 5 + [15.0, 25.0, 35.0, 45.0] + [55.0] * 6 + [500.0] * 15
    rows = [follow(days, days < 500, sex="male") for days in male]
    rows += [follow(5 + 10 * step, True, sex="female") for step in range(6) for _ in range(10)]
    rows += [follow(500, False, sex="female") for _ in range(5)]
    rows += [follow(5 + 10 * step, True, sex="missing") for step in range(6) for _ in range(6)]
    rows += [follow(500, False, sex="missing") for _ in range(6)]
    result = kaplan_meier_table(
        km_spec("sex", step=10, end=60, overall=True), answer(rows, "sex"), {}, POLICY
    )
    curves, rules = _by_label(result), rules_by_row(result)
    assert curves["male"] == [25, None, None, None, None, 15]
    assert None not in curves["female"] and None not in curves["missing"]
    # Beside the other two curves, the overall curve on days 20 to 50 would give male's back.
    assert curves["All"] == [25 + 55 + 36, None, None, None, None, 15 + 5 + 6]
    assert [rules.get(row) for row in range(19, 23)] == ["Complementary"] * 4


def test_overall_needs_a_kaplan_meier_with_by() -> None:
    with pytest.raises(ValueError, match="overall belongs to a KaplanMeier"):
        km_spec(overall=True)
    with pytest.raises(ValueError, match="overall belongs to a KaplanMeier"):
        AggregateSpec(name="n", query="q", kind="Count", by=["sex"], overall=True)


@settings(max_examples=200)
@given(
    groups=st.lists(follow_ups, min_size=3, max_size=3),
    k=st.integers(min_value=2, max_value=6),
)
def test_the_overall_curve_never_gives_back_a_small_count_of_hidden_patients(
    groups: list[list[tuple[float, bool]]], k: int
) -> None:
    """As an attacker: from the released table alone, subtract the released groups from the
    overall curve wherever it is released, and read what is left about the hidden patients."""
    policy = POLICY.model_copy(update={"min_cell_count": k, "min_cohort": 5})
    labels = ("male", "female", "missing")
    rows = [
        follow(days, dead, sex=sex)
        for sex, pairs in zip(labels, groups, strict=True)
        for days, dead in pairs
    ]
    spec = km_spec("sex", step=60, end=360, overall=True)
    result = kaplan_meier_table(spec, answer(rows, "sex"), {}, policy)
    if result.status is not AggregateStatus.RELEASED or result.table is None:
        return
    curves, sizes = _by_label(result), _sizes(result)
    overall = curves.pop("All")
    # Every hidden patient's group, together: its size from the cohort size.
    residual_size = result.table.cohort_size - sum(sizes.get(group, 0) for group in labels)
    known = [residual_size]
    for index, total in enumerate(overall):
        if total is None:
            continue
        groups_here = [curves[group][index] for group in labels if group in sizes]
        # No group with released points is held back where the overall curve is released,
        # or the overall curve would give that group's number at risk back.
        assert all(value is not None for value in groups_here)
        known.append(total - sum(value for value in groups_here if value is not None))
    if residual_size == 0 and all(group in sizes for group in labels):
        return  # nothing is hidden: the overall curve is the sum of released curves
    assert all(value >= k for value in known[1:]), known
    for first, second in combinations(known, 2):
        assert abs(first - second) >= k, known
