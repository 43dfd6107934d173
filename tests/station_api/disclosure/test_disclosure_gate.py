"""The disclosure gate, rule by rule: each decision names its rule, never a cell."""

import json
import math
import pickle
from typing import Any

import numpy as np
import pytest
from disclosure_samples import (
    PATIENT_LABELS,
    REVIEW_MOMENT,
    TRUSTED_IMAGE,
    gate_policy,
    manifest,
    model_file,
    npy_bytes,
    onnx_bytes,
    pickle_bytes,
    safetensors_bytes,
    stage_table,
    torch_like_zip,
    unchecked_table,
)

from pht_contract.manifests import ResultManifest, ResultTable, Statistic
from pht_station_api.disclosure import GateDecision, Outcome, Rule, gate

# minCohort 10, minCellCount 5, Suppress, row-level forbidden; the sample labels releasable and
# the sample image reviewed for automatic release, so each test sees what the checks decide.
POLICY = gate_policy()


def evaluate(*args: Any, **kwargs: Any) -> GateDecision:
    return gate.evaluate(*args, **{"image": TRUSTED_IMAGE, "at": REVIEW_MOMENT, **kwargs})


def evaluate_bytes(*args: Any, **kwargs: Any) -> GateDecision:
    return gate.evaluate_bytes(*args, **{"image": TRUSTED_IMAGE, "at": REVIEW_MOMENT, **kwargs})


def test_clean_aggregate_is_released() -> None:
    decision = evaluate(manifest(tables=[stage_table([40, 30, 30])]), POLICY, audited_cohort=100)
    assert decision.outcome == Outcome.RELEASED
    assert decision.rule is None
    assert decision.released.tables[0].rows[0] == ["stage 0", 40, 60.5]


def test_small_cell_is_suppressed_with_its_row_statistics() -> None:
    decision = evaluate(manifest(tables=[stage_table([40, 3, 57])]), POLICY, audited_cohort=100)
    assert decision.outcome == Outcome.RELEASED
    assert [f.rule for f in decision.findings] == [Rule.MIN_CELL_COUNT]
    # the whole row, its group label too: a free label over three patients is their record
    assert decision.released.tables[0].rows[1] == [None, None, None]
    assert decision.released.tables[0].rows[0] == ["stage 0", 40, 60.5]
    assert decision.suppressed_cells == 3


def test_small_cell_blocks_naming_rule_and_table_not_cell() -> None:
    policy = gate_policy(small_cell_action="Block")
    decision = evaluate(manifest(tables=[stage_table([40, 3, 57])]), policy, audited_cohort=100)
    assert decision.outcome == Outcome.BLOCKED
    assert decision.rule == Rule.MIN_CELL_COUNT
    described = " ".join(f.describe() for f in decision.findings)
    assert "stages" in described
    assert "3" not in described


def test_a_zero_count_beside_a_large_one_is_not_small() -> None:
    table = ResultTable.model_validate(
        {
            "name": "by_sex",
            "columns": [
                {"name": "stage", "role": "Group"},
                {"name": "male", "role": "Count"},
                {"name": "female", "role": "Count"},
            ],
            "rows": [["I", 40, 0], ["II", 30, 30]],
            "cohortSize": 100,
        }
    )
    decision = evaluate(manifest(tables=[table]), POLICY, audited_cohort=100)
    assert decision.outcome == Outcome.RELEASED
    assert decision.findings == ()
    assert decision.released.tables[0].rows == table.rows


LABELS = PATIENT_LABELS


def test_a_table_without_counts_is_blocked() -> None:
    """Free labels with a statistic and no count: row-level data labelled as an aggregate."""
    table = ResultTable.model_validate(
        {
            "name": "patients",
            "columns": [{"name": "who", "role": "Group"}, {"name": "age", "role": "Statistic"}],
            "rows": [[label, 71.0] for label in LABELS],
            "cohortSize": 422,
        }
    )
    decision = evaluate(manifest(tables=[table]), POLICY, audited_cohort=422)
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.COUNT_COLUMN_REQUIRED)
    assert "LUNG1" not in " ".join(f.describe() for f in decision.findings)


def _labelled(counts: list[int], cohort: int = 422) -> ResultTable:
    return ResultTable.model_validate(
        {
            "name": "patients",
            "columns": [
                {"name": "who", "role": "Group"},
                {"name": "n", "role": "Count"},
                {"name": "age", "role": "Statistic"},
            ],
            "rows": [[LABELS[i % len(LABELS)], c, 71.0] for i, c in enumerate(counts)],
            "cohortSize": cohort,
        }
    )


def _numbered(counts: list[int], cohort: int = 422) -> ResultTable:
    """One row per numbered group (a releasable numeric variable), each with a statistic."""
    return ResultTable.model_validate(
        {
            "name": "groups",
            "columns": [
                {"name": "group", "role": "Group"},
                {"name": "n", "role": "Count"},
                {"name": "age", "role": "Statistic"},
            ],
            "rows": [[i, c, 71.0] for i, c in enumerate(counts)],
            "cohortSize": cohort,
        }
    )


def test_zero_count_rows_are_emptied_labels_included_or_blocked() -> None:
    result = manifest(tables=[_labelled([0] * 20 + [200])])
    decision = evaluate(result, POLICY, audited_cohort=422)
    assert decision.outcome == Outcome.RELEASED
    assert [f.rule for f in decision.findings] == [Rule.ZERO_COUNT_ROW]
    rows = decision.released.tables[0].rows
    assert rows[:20] == [[None, None, None]] * 20
    assert rows[20] == [LABELS[20], 200, 71.0]
    assert decision.suppressed_cells == 60  # label, zero count and statistic of each row
    released = decision.released.model_dump_json()
    assert all(label not in released for label in LABELS[:20])
    blocking = gate_policy(small_cell_action="Block")
    blocked = evaluate(result, blocking, audited_cohort=422)
    assert (blocked.outcome, blocked.rule) == (Outcome.BLOCKED, Rule.ZERO_COUNT_ROW)


def test_rows_with_empty_counts_carry_nothing_either() -> None:
    table = ResultTable.model_validate(
        {
            "name": "patients",
            "columns": [{"name": "who", "role": "Group"}, {"name": "n", "role": "Count"}],
            "rows": [[LABELS[0], None], ["All", 50]],
            "cohortSize": 50,
        }
    )
    decision = evaluate(manifest(tables=[table]), POLICY, audited_cohort=50)
    assert decision.outcome == Outcome.RELEASED
    assert decision.released.tables[0].rows == [[None, None], ["All", 50]]


def test_no_more_rows_than_the_cohort_can_fill_with_k_patients_each() -> None:
    # 84 rows of 5 fit a cohort of 422 (420 patients); 85 do not
    fits = evaluate(manifest(tables=[_numbered([5] * 84)]), POLICY, audited_cohort=422)
    assert fits.outcome == Outcome.RELEASED
    over = evaluate(manifest(tables=[_numbered([5] * 85)]), POLICY, audited_cohort=422)
    assert (over.outcome, over.rule) == (Outcome.BLOCKED, Rule.COUNTS_EXCEED_COHORT)
    # suppressed rows are empty and do not count towards the bound
    mixed = evaluate(manifest(tables=[_numbered([5] * 84 + [1] * 300)]), POLICY, audited_cohort=422)
    assert mixed.outcome == Outcome.RELEASED
    assert all(row == [None, None, None] for row in mixed.released.tables[0].rows[84:])
    # with Block, the small row is what blocks, and is named as such
    blocking = gate_policy(small_cell_action="Block")
    small = evaluate(manifest(tables=[_numbered([5] * 84 + [1])]), blocking, audited_cohort=422)
    assert (small.outcome, small.rule) == (Outcome.BLOCKED, Rule.MIN_CELL_COUNT)


@pytest.mark.parametrize(
    ("audited", "counts", "cohort", "rule"),
    [
        (8, [4, 4], None, Rule.MIN_COHORT),  # the audited cohort is too small
        (100, [5, 3], None, Rule.MIN_COHORT),  # the table's cohort is too small
        (50, [40, 30], None, Rule.COHORT_SIZE_MISMATCH),  # claims more than the audit saw
        (100, [40, 30], 20, Rule.COHORT_SIZE_MISMATCH),  # a count above its own cohort
    ],
)
def test_cohort_rules_block(
    audited: int, counts: list[int], cohort: int | None, rule: Rule
) -> None:
    result = manifest(tables=[stage_table(counts, cohort)])
    decision = evaluate(result, POLICY, audited_cohort=audited)
    assert decision.outcome == Outcome.BLOCKED
    assert decision.rule == rule


@pytest.mark.parametrize("bad", [-30, math.nan, math.inf])
def test_invalid_counts_block_even_without_schema_validation(bad: float) -> None:
    result = manifest().model_copy(update={"tables": [unchecked_table([40, bad], 100)]})
    decision = evaluate(result, POLICY, audited_cohort=100)
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.INVALID_COUNT)


def test_unaudited_cohort_is_held() -> None:
    decision = evaluate(manifest(tables=[stage_table([40, 60])]), POLICY, audited_cohort=None)
    assert (decision.outcome, decision.rule) == (Outcome.HELD, Rule.COHORT_UNVERIFIED)


def test_row_level_tables() -> None:
    result = manifest(tables=[stage_table([40, 60], kind="RowLevel")])
    blocked = evaluate(result, POLICY, audited_cohort=100)
    assert (blocked.outcome, blocked.rule) == (Outcome.BLOCKED, Rule.ROW_LEVEL_FORBIDDEN)
    allowed = evaluate(result, gate_policy(forbid_row_level=False), audited_cohort=100)
    assert (allowed.outcome, allowed.rule) == (Outcome.HELD, Rule.ROW_LEVEL_REVIEW)


def test_small_statistics_are_dropped_or_blocked() -> None:
    result = manifest(
        statistics=[
            Statistic(name="median_os", value=514.0, n=3),
            Statistic(name="n", value=1, n=90),
        ]
    )
    suppressed = evaluate(result, POLICY, audited_cohort=100)
    assert suppressed.outcome == Outcome.RELEASED
    assert [s.name for s in suppressed.released.statistics] == ["n"]
    over_nobody = manifest(statistics=[Statistic(name="mean_age", value=71.0, n=0)])
    dropped = evaluate(over_nobody, POLICY, audited_cohort=100)
    assert dropped.outcome == Outcome.RELEASED and dropped.released.statistics == []
    assert [f.rule for f in dropped.findings] == [Rule.MIN_CELL_COUNT]
    blocked = evaluate(result, gate_policy(small_cell_action="Block"), audited_cohort=100)
    assert (blocked.outcome, blocked.rule) == (Outcome.BLOCKED, Rule.MIN_CELL_COUNT)


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (safetensors_bytes(), "safetensors"),
        (onnx_bytes(), "onnx"),
        (npy_bytes(np.arange(12, dtype=np.float64).reshape(3, 4)), "npy"),
        (json.dumps({"coef": [0.1, -0.2]}).encode(), "json"),
    ],
)
def test_safe_models_are_held_for_manual_release(data: bytes, fmt: str) -> None:
    result = manifest(models=[model_file(data, fmt)])
    held = evaluate(result, POLICY, audited_cohort=100)
    assert (held.outcome, held.rule) == (Outcome.HELD, Rule.MANUAL_RELEASE_REQUIRED)
    automatic = gate_policy(manual_release_for_models=False)
    assert evaluate(result, automatic, audited_cohort=100).outcome == Outcome.RELEASED


@pytest.mark.parametrize(
    ("data", "fmt", "rule"),
    [
        (pickle_bytes(), "npy", Rule.PICKLE_REFUSED),  # pickle bytes, declared as NumPy
        (pickle_bytes(), "json", Rule.PICKLE_REFUSED),
        (pickle.dumps([1, 2], protocol=0), "safetensors", Rule.PICKLE_REFUSED),
        (torch_like_zip(), "onnx", Rule.PICKLE_REFUSED),
        (b'{"a": 1}', "pickle", Rule.PICKLE_REFUSED),  # declared pickle is refused too
        (
            npy_bytes(np.array([{"a": 1}], dtype=object)),
            "npy",
            Rule.UNREADABLE_MODEL,
        ),  # object dtype
        (b"\x00" * 64, "onnx", Rule.UNREADABLE_MODEL),
        (safetensors_bytes()[:-4], "safetensors", Rule.UNREADABLE_MODEL),
        (b"[1, NaN]", "json", Rule.UNREADABLE_MODEL),
        (safetensors_bytes(), "json", Rule.UNREADABLE_MODEL),  # content is not the format
    ],
)
def test_unsafe_models_are_blocked(data: bytes, fmt: str, rule: Rule) -> None:
    decision = evaluate(manifest(models=[model_file(data, fmt)]), POLICY, audited_cohort=100)
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, rule)


def test_format_outside_policy_is_refused() -> None:
    policy = gate_policy(allowed_model_formats=["safetensors"])
    decision = evaluate(
        manifest(models=[model_file(onnx_bytes(), "onnx")]), policy, audited_cohort=100
    )
    assert decision.rule == Rule.MODEL_FORMAT_REFUSED


def test_model_integrity_is_checked() -> None:
    model = model_file(safetensors_bytes(), "safetensors")
    tampered = model.model_copy(update={"size_bytes": model.size_bytes + 1})
    decision = evaluate(manifest(models=[tampered]), POLICY, audited_cohort=100)
    assert decision.rule == Rule.MODEL_INTEGRITY
    wrong_hash = model.model_copy(update={"sha256": "0" * 64})
    assert evaluate(manifest(models=[wrong_hash]), POLICY, audited_cohort=100).rule == (
        Rule.MODEL_INTEGRITY
    )


def test_free_text_is_held() -> None:
    result = manifest(tables=[stage_table([50, 50])], messages=["converged after 12 epochs"])
    decision = evaluate(result, POLICY, audited_cohort=100)
    assert (decision.outcome, decision.rule) == (Outcome.HELD, Rule.FREE_TEXT_HELD)


def test_manual_release_for_all() -> None:
    policy = gate_policy(manual_release_for_all=True)
    decision = evaluate(manifest(tables=[stage_table([50, 50])]), policy, audited_cohort=100)
    assert (decision.outcome, decision.rule) == (Outcome.HELD, Rule.MANUAL_RELEASE_REQUIRED)


@pytest.mark.parametrize(
    ("earlier", "outcome"),
    [
        ((), Outcome.RELEASED),
        ((100,), Outcome.RELEASED),
        ((98,), Outcome.HELD),
        ((90,), Outcome.RELEASED),
    ],
)
def test_differencing_ledger(earlier: tuple[int, ...], outcome: Outcome) -> None:
    result = manifest(tables=[stage_table([50, 50])])
    decision = evaluate(result, POLICY, audited_cohort=100, released_cohorts=earlier)
    assert decision.outcome == outcome
    if outcome == Outcome.HELD:
        assert decision.rule == Rule.DIFFERENCING
    assert decision.cohorts == (100,)


def test_blocks_win_over_holds() -> None:
    result = manifest(tables=[stage_table([50, 50], kind="RowLevel")], messages=["hello"])
    decision = evaluate(result, POLICY, audited_cohort=100)
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.ROW_LEVEL_FORBIDDEN)


def test_too_large_and_invalid_bytes() -> None:
    small = gate_policy(max_result_bytes=1024)
    big = manifest(tables=[stage_table([10] * 40)]).model_dump_json(by_alias=True).encode()
    assert evaluate_bytes(big, small, audited_cohort=400).rule == Rule.RESULT_TOO_LARGE
    assert evaluate_bytes(b"{not json", POLICY, audited_cohort=100).rule == Rule.INVALID_MANIFEST
    unknown = json.dumps({"tables": [], "comment": "free text"}).encode()
    assert evaluate_bytes(unknown, POLICY, audited_cohort=100).rule == Rule.INVALID_MANIFEST
    good = ResultManifest(tables=[stage_table([50, 50])]).model_dump_json(by_alias=True)
    assert evaluate_bytes(good.encode(), POLICY, audited_cohort=100).outcome == Outcome.RELEASED
