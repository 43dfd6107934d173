"""The algorithm author against numeric group labels: fractional digits as a side channel.

Labels leave as sent, not rounded like statistics. Under a numeric releasable variable (the
example policy's ``days``, 0 to 36525) a label with free fractional digits carries some fifty
bits per row; only whole numbers in the range may label a row.
"""

import pytest
from security_gate_kit import (
    COHORT,
    REVIEW_MOMENT,
    REVIEWED_IMAGE,
    example_policy,
    km_like,
    parse,
    table,
)

from pht_station_api.disclosure import Outcome, Rule, evaluate

REVIEWED = example_policy(reviewed=True)


def _decide(body: dict[str, object]) -> tuple[Outcome, Rule | None, list[list[object]]]:
    decision = evaluate(
        parse(body), REVIEWED, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    rows = [row for t in decision.released.tables for row in t.rows]
    return decision.outcome, decision.rule, rows


@pytest.mark.parametrize("label", [1234.5678901234567, 365.25, 0.5, 36524.999999])
def test_a_fractional_numeric_label_blocks_the_table(label: float) -> None:
    body = {"tables": [table("t", "days", [[label, 100, 0.5], [730, 100, 0.4]])]}
    outcome, rule, rows = _decide(body)
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.LABEL_NOT_RELEASABLE)
    assert rows == []  # nothing of a blocked result is kept


def test_labels_encoding_a_value_per_row_in_their_fractions_are_blocked() -> None:
    # 80 rows of five: within every count bound; each label's fraction is a patient's value
    rows = [[100 + i + (40 + i % 47) / 1000, 5, 0.5] for i in range(80)]
    outcome, rule, _ = _decide({"tables": [table("t", "days", rows)]})
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.LABEL_NOT_RELEASABLE)


def test_whole_numbers_still_label_rows_and_leave_as_whole_numbers() -> None:
    outcome, rule, rows = _decide(km_like())
    assert (outcome, rule) == (Outcome.RELEASED, None)
    body = {"tables": [table("t", "days", [[365.0, 100, 0.5], [-0.0, 100, 0.4]])]}
    outcome, rule, rows = _decide(body)
    assert (outcome, rule) == (Outcome.RELEASED, None)
    assert [row[0] for row in rows] == [365, 0]
    assert all(type(row[0]) is int for row in rows)
