"""The frequency, zero, dominance and p-ratio rules on the real contributions behind a cell."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pht_contract.policies import AggregateRules
from pht_station_api.aggregates.rules import (
    Bounds,
    check_contributions,
    check_count,
    complementary_cells,
)

DEFAULT = AggregateRules()
ZEROS_NOT_DISCLOSIVE = AggregateRules(zeros_are_disclosive=False)
K = 5


@pytest.mark.parametrize(
    ("count", "rules", "expected"),
    [
        (0, DEFAULT, "ZeroCell"),
        (0, ZEROS_NOT_DISCLOSIVE, None),
        (1, DEFAULT, "MinCellCount"),
        (K - 1, DEFAULT, "MinCellCount"),
        (K - 1, ZEROS_NOT_DISCLOSIVE, "MinCellCount"),
        (K, DEFAULT, None),
        (K + 1, DEFAULT, None),
        (10_000, DEFAULT, None),
    ],
)
def test_a_count_is_released_from_k_patients(
    count: int, rules: AggregateRules, expected: str | None
) -> None:
    assert check_count(count, K, rules) == expected


def test_with_k_of_one_every_count_but_zero_is_released() -> None:
    assert check_count(1, 1, DEFAULT) is None
    assert check_count(0, 1, DEFAULT) == "ZeroCell"


def test_a_statistic_over_nobody_is_never_released() -> None:
    assert check_contributions([], K, DEFAULT) == "ZeroCell"
    assert check_contributions([], K, ZEROS_NOT_DISCLOSIVE) == "MinCellCount"


def test_a_statistic_needs_k_contributors() -> None:
    even = [10.0, 11.0, 12.0, 13.0, 14.0][:K]
    assert check_contributions(even[:-1], K, DEFAULT) == "MinCellCount"
    assert check_contributions(even, K, DEFAULT) is None


def test_the_frequency_rule_comes_before_dominance() -> None:
    assert check_contributions([1000.0, 1.0], K, DEFAULT) == "MinCellCount"


def test_dominance_is_judged_from_exactly_the_share() -> None:
    # n=2, k=0.9: the two largest are exactly 90 % of the total -> suppressed (as in ACRO).
    at_share = [45.0, 45.0, 4.0, 3.0, 3.0]
    assert check_contributions(at_share, K, DEFAULT) == "Dominance"
    # Just below the share: 89.9 of 100.
    below = [45.0, 44.9, 4.1, 3.0, 3.0]
    assert check_contributions(below, K, DEFAULT) is None


def test_dominance_counts_the_n_largest_contributions() -> None:
    values = [40.0, 30.0, 20.0, 5.0, 5.0]
    assert check_contributions(values, K, AggregateRules(dominance_n=2, dominance_k=0.7)) == (
        "Dominance"
    )
    assert check_contributions(values, K, AggregateRules(dominance_n=1, dominance_k=0.7)) is None
    assert check_contributions(values, K, AggregateRules(dominance_n=3, dominance_k=0.9)) == (
        "Dominance"
    )


def test_one_outlier_dominates_a_cell_of_many() -> None:
    values = [1.0] * 50 + [1_000_000.0]
    assert check_contributions(values, K, DEFAULT) == "Dominance"


def test_the_p_ratio_is_judged_from_exactly_p() -> None:
    # The rest (total - largest - second) is exactly 10 % of the largest: released (as ACRO).
    rules = AggregateRules(dominance_k=1.0, p_ratio=0.1)
    at_p = [100.0, 100.0, 4.0, 3.0, 3.0]
    assert check_contributions(at_p, K, rules) is None
    below_p = [100.0, 100.0, 4.0, 3.0, 2.9]
    assert check_contributions(below_p, K, rules) == "PRatio"


def test_the_p_ratio_catches_what_a_one_contributor_dominance_rule_lets_through() -> None:
    # The largest is about half of the total (no 1-0.9 dominance), but the second largest
    # could estimate it within 10 %: the other three add up to less than 10 % of it.
    rules = AggregateRules(dominance_n=1, dominance_k=0.9, p_ratio=0.1)
    values = [50.0, 45.0, 1.0, 1.0, 1.0]
    assert check_contributions(values, K, rules) == "PRatio"
    assert check_contributions([50.0, 45.0, 2.0, 2.0, 1.0], K, rules) is None


def test_negative_contributions_count_by_their_size() -> None:
    values = [-1_000_000.0, 1.0, 2.0, 3.0, 4.0]
    assert check_contributions(values, K, DEFAULT) == "Dominance"
    mirrored = [-v for v in [45.0, 44.9, 4.1, 3.0, 3.0]]
    assert check_contributions(mirrored, K, DEFAULT) is None


def test_contributions_that_are_all_zero_have_no_dominant_contributor() -> None:
    # Nothing dominates; where zeros are not disclosive an all-zero mean is released.
    assert check_contributions([0.0] * K, K, ZEROS_NOT_DISCLOSIVE) is None
    assert check_contributions([0.0] * (K - 1), K, DEFAULT) == "MinCellCount"


def test_a_statistic_over_identical_values_tells_each_value() -> None:
    # A mean of 70 over five patients who are all 70 says each of them is 70: suppressed where
    # zeros are (the same attribute disclosure as a zero count).
    assert check_contributions([70.0] * K, K, DEFAULT) == "NoVariation"
    assert check_contributions([0.0] * K, K, DEFAULT) == "NoVariation"
    assert check_contributions([70.0] * (K - 1) + [71.0], K, DEFAULT) is None
    assert check_contributions([70.0] * K, K, ZEROS_NOT_DISCLOSIVE) is None


def test_huge_contributions_are_compared_without_overflow() -> None:
    huge = [1.7e308, 1.6e308, 1.5e308, 1.4e308, 1.3e308][:K]
    assert math.isinf(sum(huge))
    assert check_contributions(huge, K, DEFAULT) is None
    assert check_contributions([1.7e308, 1.7e308, 1.0, 1.0, 1.0], K, DEFAULT) == "Dominance"


def test_a_policy_of_k_one_still_suppresses_a_single_contributor() -> None:
    assert check_contributions([42.0], 1, DEFAULT) == "NoVariation"
    assert check_contributions([42.0], 1, ZEROS_NOT_DISCLOSIVE) == "Dominance"


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
policies = st.builds(
    AggregateRules,
    zeros_are_disclosive=st.booleans(),
    dominance_n=st.integers(min_value=1, max_value=10),
    dominance_k=st.floats(min_value=0.01, max_value=1.0),
    p_ratio=st.floats(min_value=0.0, max_value=1.0),
)


@given(
    values=st.lists(finite, max_size=40), k=st.integers(min_value=1, max_value=12), rules=policies
)
def test_a_released_statistic_meets_every_rule(
    values: list[float], k: int, rules: AggregateRules
) -> None:
    if check_contributions(values, k, rules) is not None:
        return
    assert len(values) >= max(k, 1)
    magnitudes = sorted((abs(v) for v in values), reverse=True)
    total = math.fsum(magnitudes)
    if total == 0:
        return
    top_n = math.fsum(magnitudes[: rules.dominance_n])
    assert top_n < rules.dominance_k * total * (1 + 1e-9)
    rest = math.fsum(magnitudes[2:])
    assert rest >= rules.p_ratio * magnitudes[0] * (1 - 1e-9)


@given(
    values=st.lists(finite, max_size=40), k=st.integers(min_value=1, max_value=12), rules=policies
)
def test_fewer_than_k_contributors_are_never_released(
    values: list[float], k: int, rules: AggregateRules
) -> None:
    if len(values) < k:
        assert check_contributions(values, k, rules) in ("MinCellCount", "ZeroCell")


@given(
    values=st.lists(finite, min_size=1, max_size=30),
    scale=st.sampled_from([2.0, 1024.0, -1.0, -4.0]),
    k=st.integers(min_value=1, max_value=8),
    rules=policies,
)
def test_the_rules_do_not_depend_on_units_or_sign(
    values: list[float], scale: float, k: int, rules: AggregateRules
) -> None:
    # Powers of two keep every product exact, so the decision must not change.
    scaled = [v * scale for v in values]
    assert check_contributions(scaled, k, rules) == check_contributions(values, k, rules)


@given(
    values=st.lists(finite, min_size=1, max_size=30),
    k=st.integers(min_value=1, max_value=8),
    rules=policies,
    data=st.data(),
)
def test_the_rules_do_not_depend_on_the_order_of_patients(
    values: list[float], k: int, rules: AggregateRules, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(values))
    assert check_contributions(shuffled, k, rules) == check_contributions(values, k, rules)


@given(count=st.integers(min_value=0, max_value=10_000), k=st.integers(min_value=1, max_value=50))
def test_a_released_count_is_zero_or_at_least_k(count: int, k: int) -> None:
    for rules in (DEFAULT, ZEROS_NOT_DISCLOSIVE):
        if check_count(count, k, rules) is None:
            assert count >= k or (count == 0 and not rules.zeros_are_disclosive)


SMALL: Bounds = (0, K - 1)


def test_nothing_emptied_needs_no_complement() -> None:
    assert complementary_cells([10, 20], {}, K, DEFAULT, released_floor=K) == []


def test_one_small_cell_is_never_left_alone_against_the_total() -> None:
    # Alone, it would be the cohort size less the released counts.
    counts = [3, 50, 6, 9]
    assert complementary_cells(counts, {0: SMALL}, K, DEFAULT, released_floor=K) == [2]


def test_the_complement_must_leave_the_small_cell_its_whole_range() -> None:
    # With 6 emptied beside the 3, a reader knowing the complement holds at least 5 could
    # still place the small cell anywhere from 0 to 4; with the 5 beside it, only from 0 to 3.
    counts = [3, 5, 6]
    assert complementary_cells(counts, {0: SMALL}, K, DEFAULT, released_floor=K) == [2]


def test_small_cells_that_fill_their_ceilings_need_a_complement() -> None:
    # Two cells of at most 4 summing to 8 are both 4.
    counts = [4, 4, 30]
    assert complementary_cells(counts, {0: SMALL, 1: SMALL}, K, DEFAULT, K) == [2]


def test_an_emptied_zero_is_protected_when_zeros_are_disclosive() -> None:
    counts = [0, 20, 9, 7]
    assert complementary_cells(counts, {0: SMALL}, K, DEFAULT, released_floor=K) == [2]
    assert complementary_cells(counts, {0: SMALL}, K, ZEROS_NOT_DISCLOSIVE, K) == []


def test_several_complements_when_no_single_one_suffices() -> None:
    # Each complement adds only what it holds beyond the 5 a reader knows it holds.
    counts = [1, 7, 7, 5]
    assert complementary_cells(counts, {0: SMALL}, K, DEFAULT, released_floor=K) == [2, 1]
    assert complementary_cells([1, 6, 6, 5], {0: SMALL}, K, DEFAULT, released_floor=K) is None


def test_no_complement_can_protect_a_small_cell_beside_one_released_cell_of_k() -> None:
    assert complementary_cells([1, 5], {0: SMALL}, K, DEFAULT, released_floor=K) is None


def _reader_can_place(counts: list[int], bounds: dict[int, Bounds], row: int, value: int) -> bool:
    """Whether the emptied cells' total admits ``value`` in ``row`` (others within bounds)."""
    rest = sum(counts[r] for r in bounds) - value
    others = [b for r, b in bounds.items() if r != row]
    low = sum(floor for floor, _ in others)
    ceilings = [ceiling for _, ceiling in others]
    high = None if None in ceilings else sum(c for c in ceilings if c is not None)
    return rest >= low and (high is None or rest <= high)


@given(
    counts=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12),
    k=st.integers(min_value=2, max_value=8),
    zeros=st.booleans(),
)
def test_after_complements_every_small_cell_keeps_its_whole_range(
    counts: list[int], k: int, zeros: bool
) -> None:
    rules = AggregateRules(zeros_are_disclosive=zeros)
    floor = 0 if zeros else 1
    emptied: dict[int, Bounds] = {
        row: (floor, k - 1)
        for row, count in enumerate(counts)
        if check_count(count, k, rules) is not None
    }
    added = complementary_cells(counts, emptied, k, rules, released_floor=k)
    if added is None:
        return
    assert not set(added) & set(emptied)
    assert all(counts[row] >= k for row in added)
    bounds = {**emptied, **dict.fromkeys(added, (k, None))}
    for row in emptied:
        assert _reader_can_place(counts, bounds, row, floor)
        assert _reader_can_place(counts, bounds, row, k - 1)
