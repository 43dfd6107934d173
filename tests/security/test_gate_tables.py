"""The algorithm author against the disclosure gate's table and statistic checks.

Each test replays an attack that released row-level data of every patient in the 422-patient
synthetic cohort under the example policy, and asserts that nothing of it would leave now —
even when the steward has reviewed the image for automatic release, so the checks themselves
are what stops it, not only the default hold.
"""

import json

import pytest
from security_gate_kit import (
    COHORT,
    PATIENT_IDS,
    REVIEW_MOMENT,
    REVIEWED_IMAGE,
    UNREVIEWED_IMAGE,
    example_policy,
    km_like,
    parse,
    table,
)

from pht_station_api.disclosure import Outcome, Rule, evaluate, evaluate_bytes

REVIEWED = example_policy(reviewed=True)


def _described(decision: object) -> str:
    return " ".join(f.describe() for f in decision.findings)  # type: ignore[attr-defined]


def test_one_statistic_per_patient_claiming_the_whole_cohort_is_not_released() -> None:
    ages = [40.0 + (i * 37 % 470) / 10 for i in range(COHORT)]
    body = {
        "statistics": [{"name": f"s{i}", "value": age, "n": COHORT} for i, age in enumerate(ages)]
    }
    for policy, image in ((REVIEWED, REVIEWED_IMAGE), (example_policy(), UNREVIEWED_IMAGE)):
        decision = evaluate(
            parse(body), policy, audited_cohort=COHORT, image=image, at=REVIEW_MOMENT
        )
        assert decision.outcome != Outcome.RELEASED
    reviewed = evaluate(
        parse(body), REVIEWED, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    assert (reviewed.outcome, reviewed.rule) == (Outcome.HELD, Rule.VALUES_EXCEED_COHORT)


def test_patient_identifiers_as_labels_spread_over_32_tables_are_blocked() -> None:
    per_table = COHORT // 5  # what the old per-table bound let through: 84 rows of 5
    tables = [
        table(
            f"t{t}",
            "stage",
            [[pid, 5, 70.0] for pid in PATIENT_IDS[t * per_table : (t + 1) * per_table]],
        )
        for t in range(32)
        if PATIENT_IDS[t * per_table : (t + 1) * per_table]
    ]
    decision = evaluate(
        parse({"tables": tables}),
        REVIEWED,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.LABEL_NOT_RELEASABLE)
    assert "LUNG1" not in _described(decision)


def test_releasable_labels_cannot_carry_one_row_per_patient_across_tables() -> None:
    # numeric labels in the releasable range of `days`, 84 rows per table: within each table's
    # bound, but 32 tables together claim more groups of five than the cohort has patients
    tables = [
        table(f"t{t}", "days", [[t * 100 + r, 5, 70.0] for r in range(84)]) for t in range(32)
    ]
    decision = evaluate(
        parse({"tables": tables}),
        REVIEWED,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    assert decision.outcome == Outcome.BLOCKED
    assert {Rule.COUNTS_EXCEED_COHORT, Rule.TOO_MANY_LABELLED_ROWS} <= {
        f.rule for f in decision.findings
    }


def test_repeated_labels_cannot_turn_an_aggregate_into_rows() -> None:
    rows = [["IIIb", 5, 60.0 + i] for i in range(40)]
    decision = evaluate(
        parse({"tables": [table("t", "stage", rows)]}),
        REVIEWED,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.DUPLICATE_GROUP_ROW)


def test_a_label_outside_its_variables_domain_is_blocked() -> None:
    for label in ("LUNG1-001", "stage IV", 99999, True):
        body = {"tables": [table("t", "stage", [[label, 200, 1.0], ["All", 422, 1.0]])]}
        raw = json.dumps(body).encode()
        decision = evaluate_bytes(
            raw, REVIEWED, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
        )
        assert decision.outcome == Outcome.BLOCKED, label


@pytest.mark.parametrize("column", ["value", "stage", "patients"])
def test_an_integer_thousands_of_digits_long_never_leaves(column: str) -> None:
    cohort_as_integer = int("".join(f"{i % 90 + 10:02d}" for i in range(2000)))  # 4000 digits
    cells = {"stage": "I", "patients": 200, "value": 1.0, column: cohort_as_integer}
    row = [cells["stage"], cells["patients"], cells["value"]]
    body = {"tables": [table("t", "stage", [row, ["All", 422, 2.0]])]}
    raw = json.dumps(body).encode()
    decision = evaluate_bytes(
        raw, REVIEWED, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    assert decision.outcome == Outcome.BLOCKED
    assert str(cohort_as_integer)[:50] not in decision.released.model_dump_json()
    assert str(cohort_as_integer)[:20] not in _described(decision)


def test_statistics_leave_as_doubles_with_bounded_significant_digits() -> None:
    body = {
        "statistics": [
            {"name": "mean_age", "value": 68.123456789012345, "n": COHORT},
            {"name": "big", "value": 2**52 + 1, "n": COHORT},
        ]
    }
    decision = evaluate(
        parse(body), REVIEWED, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    assert decision.outcome == Outcome.RELEASED
    values = [s.value for s in decision.released.statistics]
    assert values == [68.1235, 4.5036e15]  # 6 significant digits, the example policy's setting


def test_cells_per_result_are_capped() -> None:
    policy = REVIEWED.model_copy(update={"max_cells_per_result": 20})
    decision = evaluate(
        parse(km_like()), policy, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.TOO_MANY_CELLS)


def test_the_honest_result_still_passes_the_checks() -> None:
    decision = evaluate(
        parse(km_like()), REVIEWED, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    assert (decision.outcome, decision.rule) == (Outcome.RELEASED, None)
