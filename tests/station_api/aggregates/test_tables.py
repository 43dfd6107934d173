"""Count and Summary tables the station computes, and what their rules let leave."""

import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyoxigraph
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pht_contract.aggregates import AggregateResult, AggregateSpec, AggregateStatus
from pht_contract.policies import DisclosurePolicy, ReleasableVariable
from pht_station_api.aggregates.answers import Answer, Value, label, number, read_answer
from pht_station_api.aggregates.tables import count_table, mean_and_sd, summary_table
from pht_station_api.disclosure.numbers import round_significant
from tests.station_api.aggregates.conftest import answer_of, example_query

Row = Mapping[str, Value]
REPO = Path(__file__).resolve().parents[3]
K = 5
POLICY = DisclosurePolicy(
    min_cohort=10,
    min_cell_count=K,
    releasable_variables=[
        ReleasableVariable(name="stage", values=["I", "II", "IIIa", "IIIb", "missing"]),
        ReleasableVariable(name="sex", values=["male", "female"]),
        ReleasableVariable(name="days", minimum=0, maximum=36525),
    ],
)
#: Every rule a table may name: none carries a value.
RULES = {
    "MinCellCount",
    "Dominance",
    "PRatio",
    "Complementary",
    "NotFinite",
    "MinCohort",
    "NoPatients",
    "UnknownVariable",
    "LabelNotReleasable",
    "NotCategorical",
    "DuplicateColumn",
    "TooManyRows",
}


def example_policy() -> DisclosurePolicy:
    document = yaml.safe_load((REPO / "examples/policies/station-policy.yaml").read_text())
    return DisclosurePolicy.model_validate(document["spec"]["disclosure"])


def repeat(row: Row, times: int) -> list[Row]:
    return [row] * times


def answer(variables: tuple[str, ...], rows: Sequence[Row]) -> Answer:
    """An answer of one record per row, each bound to its own patient."""
    patients = tuple(
        {"patient": f"https://h.example/p/{index}", **row} for index, row in enumerate(rows)
    )
    return Answer(("patient", *variables), patients, 0)


def count_spec(*by: str) -> AggregateSpec:
    return AggregateSpec(name="counts", query="cohort", kind="Count", by=list(by))


def summary_spec(variable: str, *by: str) -> AggregateSpec:
    return AggregateSpec(
        name="ages", query="cohort", kind="Summary", by=list(by), variable=variable
    )


def column(result: AggregateResult, name: str) -> list[object]:
    assert result.table is not None
    index = [c.name for c in result.table.columns].index(name)
    return [row[index] for row in result.table.rows]


def emptied(result: AggregateResult, name: str) -> dict[int, str]:
    return {cell.row: cell.rule for cell in result.suppressed if cell.column == name}


@pytest.fixture(scope="module")
def cohort(cohort_store: pyoxigraph.Store) -> Answer:
    return read_answer(
        answer_of(cohort_store, example_query("federated-logreg", "cohort")), "patient"
    )


# --- Count ----------------------------------------------------------------------------------


def test_a_cross_table_on_the_synthetic_cohort_is_the_direct_count(cohort: Answer) -> None:
    policy = example_policy()
    result = count_table(count_spec("stage", "sex"), cohort, {}, policy)
    assert result.status is AggregateStatus.RELEASED and result.table is not None
    stages = next(v.values for v in policy.releasable_variables if v.name == "stage")
    sexes = next(v.values for v in policy.releasable_variables if v.name == "sex")
    direct = Counter(
        (label(p.get("stage")) or "missing", label(p.get("sex")) or "missing")
        for p in cohort.patients
    )
    # No patient is in group "All" (an algorithm table's whole-cohort row): never a station row.
    expected_rows = [(stage, sex) for stage in stages for sex in sexes if stage != "All"]
    assert [tuple(row[:2]) for row in result.table.rows] == expected_rows
    assert [c.name for c in result.table.columns] == ["stage", "sex", "patients"]
    assert [c.role for c in result.table.columns] == ["Group", "Group", "Count"]
    cells = emptied(result, "patients")
    for row, (labels, count) in enumerate(
        zip(expected_rows, column(result, "patients"), strict=True)
    ):
        if row in cells:
            assert count is None
        else:
            assert count == direct[labels] and count >= K
    # Every small or empty group is emptied; the complement keeps them from being recomputed.
    assert {row for row, labels in enumerate(expected_rows) if direct[labels] < K} <= set(cells)
    assert "Complementary" in cells.values()
    assert result.table.cohort_size == len(cohort.patients)
    assert result.rule == cells[min(cells)]
    assert result.left_out is None


def test_a_count_without_by_is_the_cohort(cohort: Answer) -> None:
    result = count_table(count_spec(), cohort, {}, POLICY)
    assert result.table is not None
    assert result.table.rows == [[len(cohort.patients)]]
    assert result.suppressed == []


def test_a_group_of_one_patient_is_emptied_and_cannot_be_recomputed() -> None:
    rows: list[Row] = (
        repeat({"stage": "I"}, 30) + repeat({"stage": "II"}, 1) + repeat({"stage": "IIIa"}, 8)
    )
    rows += repeat({"stage": "IIIb"}, 20) + repeat({"stage": "missing"}, 12)
    result = count_table(count_spec("stage"), answer(("stage",), rows), {}, POLICY)
    assert column(result, "patients") == [30, None, None, 20, 12]
    assert emptied(result, "patients") == {1: "MinCellCount", 2: "Complementary"}
    assert result.table is not None and result.table.cohort_size == 71


def test_the_complement_is_the_smallest_cell_that_hides_the_small_one() -> None:
    # 2 alone against the total would be recomputed; with 8 beside it a reader knowing the
    # complement holds at least 5 still cannot tell the small cell from 0 to 4.
    rows: list[Row] = repeat({"stage": "I"}, 30) + repeat({"stage": "II"}, 2)
    rows += (
        repeat({"stage": "IIIa"}, 8)
        + repeat({"stage": "IIIb"}, 20)
        + repeat({"stage": "missing"}, 6)
    )
    result = count_table(count_spec("stage"), answer(("stage",), rows), {}, POLICY)
    assert column(result, "patients") == [30, None, None, 20, 6]
    assert emptied(result, "patients") == {1: "MinCellCount", 2: "Complementary"}


def test_a_group_of_k_minus_one_is_emptied_and_of_k_released() -> None:
    rows: list[Row] = repeat({"sex": "male"}, K - 1) + repeat({"sex": "female"}, 40)
    result = count_table(count_spec("sex"), answer(("sex",), rows), {}, POLICY)
    assert column(result, "patients") == [None, None]
    rows = repeat({"sex": "male"}, K) + repeat({"sex": "female"}, 40)
    result = count_table(count_spec("sex"), answer(("sex",), rows), {}, POLICY)
    assert column(result, "patients") == [K, 40]
    assert result.suppressed == [] and result.rule is None


def test_a_zero_is_emptied_as_a_small_count_unless_zeros_are_released() -> None:
    data = answer(("sex",), repeat({"sex": "male"}, 20))
    result = count_table(count_spec("sex"), data, {}, POLICY)
    # The empty female group is emptied under the same rule as a small count, and the male
    # group with it: the total would otherwise say the female group is empty.
    assert emptied(result, "patients") == {0: "Complementary", 1: "MinCellCount"}
    assert result.status is AggregateStatus.RELEASED
    released = POLICY.model_copy(
        update={"aggregates": POLICY.aggregates.model_copy(update={"zeros_are_disclosive": False})}
    )
    result = count_table(count_spec("sex"), data, {}, released)
    assert column(result, "patients") == [20, 0]


def test_small_cells_that_would_add_up_to_the_total_withhold_the_table() -> None:
    # Five groups of four: each emptied cell holds at most four and they add up to twenty.
    rows: list[Row] = [
        {"stage": stage} for stage in ("I", "II", "IIIa", "IIIb", "missing") for _ in range(4)
    ]
    result = count_table(count_spec("stage"), answer(("stage",), rows), {}, POLICY)
    assert result.status is AggregateStatus.WITHHELD
    assert result.rule == "MinCellCount" and result.table is None


def test_a_table_of_only_small_cells_that_hide_each_other_is_released_empty() -> None:
    rows: list[Row] = [
        {"stage": stage, "sex": sex}
        for stage in ("I", "II", "IIIa", "IIIb", "missing")
        for sex in ("male", "female")
    ] + repeat({"stage": "I", "sex": "male"}, 2)
    result = count_table(count_spec("stage", "sex"), answer(("stage", "sex"), rows), {}, POLICY)
    assert result.status is AggregateStatus.RELEASED and result.table is not None
    assert column(result, "patients") == [None] * 10
    assert result.table.cohort_size == 12


def test_a_label_not_listed_is_left_out_and_never_released() -> None:
    rows: list[Row] = repeat({"sex": "male"}, 20) + repeat({"sex": "female"}, 20)
    rows += repeat({"sex": "https://h.example/p/42 Jane Doe"}, 6)
    result = count_table(count_spec("sex"), answer(("sex",), rows), {}, POLICY)
    assert column(result, "sex") == ["male", "female"]
    assert column(result, "patients") == [20, 20]
    assert result.left_out == 6
    assert "Jane" not in result.model_dump_json()


def test_few_patients_left_out_are_not_reported() -> None:
    rows: list[Row] = repeat({"sex": "male"}, 20) + repeat({"sex": "female"}, 20)
    rows += repeat({"sex": "other"}, K - 1)
    result = count_table(count_spec("sex"), answer(("sex",), rows), {}, POLICY)
    assert result.left_out is None


def test_an_unbound_label_is_missing_only_where_missing_is_listed() -> None:
    rows: list[Row] = repeat({"stage": "I", "sex": "male"}, 20) + repeat({}, 7)
    result = count_table(count_spec("stage"), answer(("stage", "sex"), rows), {}, POLICY)
    assert column(result, "patients")[4] == 7
    result = count_table(count_spec("sex"), answer(("stage", "sex"), rows), {}, POLICY)
    assert result.left_out == 7


def test_a_table_below_the_minimum_cohort_is_withheld() -> None:
    rows: list[Row] = repeat({"sex": "male"}, 9)
    result = count_table(count_spec("sex"), answer(("sex",), rows), {}, POLICY)
    assert result.status is AggregateStatus.WITHHELD and result.rule == "MinCohort"
    assert result.table is None and result.left_out is None


def test_an_answer_without_patients_is_withheld() -> None:
    empty = read_answer(
        b'{"head": {"vars": ["patient", "sex"]}, "results": {"bindings": []}}', "patient"
    )
    result = count_table(count_spec("sex"), empty, {}, POLICY)
    assert result.status is AggregateStatus.WITHHELD and result.rule == "NoPatients"


@pytest.mark.parametrize(
    ("by", "rule"),
    [
        (("histology",), "LabelNotReleasable"),
        (("patient",), "LabelNotReleasable"),
        (("days",), "NotCategorical"),
        (("sex", "sex"), "DuplicateColumn"),
    ],
)
def test_a_grouping_the_policy_does_not_allow_fails(by: tuple[str, ...], rule: str) -> None:
    data = answer(("sex", "histology", "days"), repeat({"sex": "male"}, 20))
    result = count_table(count_spec(*by), data, {}, POLICY)
    assert result.status is AggregateStatus.FAILED and result.rule == rule
    assert result.table is None


def test_a_by_variable_the_answer_lacks_fails() -> None:
    result = count_table(
        count_spec("stage"), answer(("sex",), repeat({"sex": "male"}, 20)), {}, POLICY
    )
    assert result.status is AggregateStatus.FAILED and result.rule == "UnknownVariable"


def test_a_releasable_variable_named_like_a_column_fails() -> None:
    policy = POLICY.model_copy(
        update={"releasable_variables": [ReleasableVariable(name="patients", values=["a"])]}
    )
    result = count_table(count_spec("patients"), answer(("patients",), repeat({}, 20)), {}, policy)
    assert result.status is AggregateStatus.FAILED and result.rule == "DuplicateColumn"


@given(
    groups=st.lists(st.integers(min_value=0, max_value=30), min_size=5, max_size=5),
    zeros=st.booleans(),
)
def test_every_released_count_is_the_true_count_and_at_least_k(
    groups: list[int], zeros: bool
) -> None:
    stages = ["I", "II", "IIIa", "IIIb", "missing"]
    rows: list[Row] = [
        {"stage": stage} for stage, size in zip(stages, groups, strict=True) for _ in range(size)
    ]
    policy = POLICY.model_copy(
        update={"aggregates": POLICY.aggregates.model_copy(update={"zeros_are_disclosive": zeros})}
    )
    result = count_table(count_spec("stage"), answer(("stage",), rows), {}, policy)
    assert result.rule is None or result.rule in RULES
    if result.status is not AggregateStatus.RELEASED:
        assert result.table is None
        return
    assert result.table is not None and result.table.cohort_size == sum(groups)
    for count, size in zip(column(result, "patients"), groups, strict=True):
        assert count is None or (count == size and (count >= K or (count == 0 and not zeros)))


# --- Summary --------------------------------------------------------------------------------


def test_a_summary_on_the_synthetic_cohort_is_the_direct_mean_and_sd(cohort: Answer) -> None:
    result = summary_table(summary_spec("age", "stage"), cohort, {}, POLICY)
    assert result.status is AggregateStatus.RELEASED and result.table is not None
    assert [c.name for c in result.table.columns] == ["stage", "patients", "mean", "sd"]
    assert [c.role for c in result.table.columns] == ["Group", "Count", "Statistic", "Statistic"]
    ages: dict[str, list[float]] = {}
    for patient in cohort.patients:
        age = number(patient.get("age"))
        if age is not None:
            ages.setdefault(label(patient.get("stage")) or "missing", []).append(age)
    means = column(result, "mean")
    sds = column(result, "sd")
    counts = column(result, "patients")
    for row, stage in enumerate(["I", "II", "IIIa", "IIIb", "missing"]):
        values = ages.get(stage, [])
        # A group whose count is emptied (small, or as a complement) keeps its statistics hidden.
        if len(values) >= K and counts[row] is not None:
            assert means[row] == round_significant(statistics.fmean(values), 6)
            assert sds[row] == round_significant(statistics.stdev(values), 6)
        else:
            assert means[row] is None and sds[row] is None
    assert result.table.cohort_size == sum(len(v) for v in ages.values())


def test_a_dominant_outlier_empties_the_mean_and_sd_but_not_the_count() -> None:
    rows: list[Row] = repeat({"sex": "male", "dose": 1.0}, 20)
    rows += repeat({"sex": "male", "dose": 1e9}, 1)
    rows += [{"sex": "female", "dose": 1.0 + (i % 3)} for i in range(20)]
    result = summary_table(summary_spec("dose", "sex"), answer(("sex", "dose"), rows), {}, POLICY)
    assert column(result, "patients") == [21, 20]
    assert column(result, "mean") == [None, 1.95]
    assert column(result, "sd") == [
        None,
        round_significant(statistics.stdev([1.0 + (i % 3) for i in range(20)]), 6),
    ]
    assert emptied(result, "mean") == {0: "Dominance"}
    assert emptied(result, "sd") == {0: "Dominance"}
    assert result.rule == "Dominance"


def test_patients_without_a_number_are_left_out_of_a_summary() -> None:
    rows: list[Row] = [{"sex": "male", "age": 50.0 + i % 21} for i in range(20)]
    rows += [{"sex": "female", "age": 50.0 + i} for i in range(20)]
    rows += repeat({"sex": "female", "age": "unknown"}, 3) + repeat({"sex": "female"}, 3)
    result = summary_table(summary_spec("age", "sex"), answer(("sex", "age"), rows), {}, POLICY)
    assert column(result, "patients") == [20, 20]
    assert column(result, "mean") == [59.5, 59.5]
    assert result.left_out == 6
    assert result.table is not None and result.table.cohort_size == 40


def test_a_nan_or_infinite_number_in_the_answer_is_not_a_number() -> None:
    double = "http://www.w3.org/2001/XMLSchema#double"
    bindings = [
        {
            "patient": {"type": "uri", "value": f"https://h.example/p/{i}"},
            "age": {"type": "literal", "datatype": double, "value": value},
        }
        for i, value in enumerate(["NaN", "INF", "-INF"] + ["70", "72"] * 6)
    ]
    body = json.dumps({"head": {"vars": ["patient", "age"]}, "results": {"bindings": bindings}})
    result = summary_table(summary_spec("age"), read_answer(body.encode(), "patient"), {}, POLICY)
    assert result.table is not None
    assert result.table.rows == [[12, 71.0, round_significant(math.sqrt(12 / 11), 6)]]
    assert result.left_out is None  # three is fewer than k


def test_huge_numbers_give_exact_statistics_without_overflow() -> None:
    rows: list[Row] = repeat({"x": 1e300}, 6) + repeat({"x": -1e300}, 6)
    result = summary_table(summary_spec("x"), answer(("x",), rows), {}, POLICY)
    assert result.table is not None
    [[patients, mean, sd]] = result.table.rows
    assert patients == 12 and mean == 0.0
    assert sd == round_significant(1e300 * math.sqrt(12 / 11), 6)


def test_a_standard_deviation_beyond_the_largest_double_is_emptied() -> None:
    rows: list[Row] = repeat({"x": 1.79e308}, 6) + repeat({"x": -1.79e308}, 6)
    result = summary_table(summary_spec("x"), answer(("x",), rows), {}, POLICY)
    assert result.table is not None
    assert result.table.rows == [[12, 0.0, None]]
    assert emptied(result, "sd") == {0: "NotFinite"}


def test_mean_and_sd_are_exact() -> None:
    values = [0.1] * 10 + [0.2] * 10
    mean, sd = mean_and_sd(values)
    assert mean == statistics.mean(values)  # exact, then rounded once
    assert sd == pytest.approx(statistics.stdev(values), rel=1e-15)
    assert mean_and_sd([3.0]) == (3.0, None)


def test_a_summary_of_a_variable_the_answer_lacks_fails() -> None:
    result = summary_table(
        summary_spec("weight"), answer(("age",), repeat({"age": 1.0}, 20)), {}, POLICY
    )
    assert result.status is AggregateStatus.FAILED and result.rule == "UnknownVariable"


def test_a_group_of_k_minus_one_numbers_has_no_mean() -> None:
    rows: list[Row] = [{"sex": "male", "age": 60.0 + i} for i in range(K - 1)]
    rows += [{"sex": "female", "age": 50.0 + i} for i in range(30)]
    rows += repeat({"sex": "male", "age": "?"}, 10)
    result = summary_table(summary_spec("age", "sex"), answer(("sex", "age"), rows), {}, POLICY)
    # The small group is emptied; with one other group, the total would tell it: both go, and
    # with them the statistics that rest on those counts.
    assert column(result, "patients") == [None, None]
    assert column(result, "mean") == [None, None]
    assert emptied(result, "mean") == {0: "MinCellCount", 1: "Complementary"}
    assert result.left_out == 10


def test_a_grouping_with_more_rows_than_the_policy_allows_fails() -> None:
    policy = POLICY.model_copy(update={"max_labelled_rows_per_result": 9})
    data = answer(("stage", "sex"), repeat({"stage": "I", "sex": "male"}, 20))
    assert count_table(count_spec("stage"), data, {}, policy).status is AggregateStatus.RELEASED
    result = count_table(count_spec("stage", "sex"), data, {}, policy)
    assert result.status is AggregateStatus.FAILED and result.rule == "TooManyRows"


def test_a_spread_needs_degrees_of_freedom_and_identical_values_tell_each_value() -> None:
    # Six women (5 degrees of freedom: their sd is withheld, their mean released), twelve men
    # of whom every one is 70 (the mean would tell each man's age: mean and sd withheld).
    rows: list[Row] = [{"sex": "female", "age": 60.0 + i} for i in range(6)]
    rows += repeat({"sex": "male", "age": 70.0}, 12)
    result = summary_table(summary_spec("age", "sex"), answer(("sex", "age"), rows), {}, POLICY)
    assert column(result, "patients") == [12, 6]
    assert column(result, "mean") == [None, 62.5]
    assert column(result, "sd") == [None, None]
    # A reader sees MinCellCount: a rule named after identical values would tell them.
    assert emptied(result, "mean") == {0: "MinCellCount"}
    assert emptied(result, "sd") == {0: "MinCellCount", 1: "ResidualDof"}


def test_a_few_valued_variable_is_judged_like_a_category() -> None:
    # Deaths as 0/1: n and the mean of a group would tell how many died. Three deaths among
    # forty in one group is a small count: its mean and sd stay hidden; the other group keeps
    # both, since each of its values is held by at least k patients.
    rows: list[Row] = [{"sex": "male", "dead": 1.0 if i < 3 else 0.0} for i in range(40)]
    rows += [{"sex": "female", "dead": 1.0 if i < 20 else 0.0} for i in range(40)]
    result = summary_table(summary_spec("dead", "sex"), answer(("sex", "dead"), rows), {}, POLICY)
    assert column(result, "patients") == [40, 40]
    assert column(result, "mean") == [None, 0.5]
    assert emptied(result, "mean") == {0: "MinCellCount"}
