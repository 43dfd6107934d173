"""The Kaplan–Meier estimator against hand-computed and textbook values."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kaplan_meier.estimators import kaplan_meier

# Freireich et al. (1963) 6-MP arm, the textbook Kaplan–Meier example: weeks in remission,
# 9 relapses and 12 censored. Survival and Greenwood standard errors as tabulated in
# textbooks (e.g. Kleinbaum & Klein, "Survival Analysis", chapter 2), to 3 decimals.
SIX_MP_RELAPSE = [6, 6, 6, 7, 10, 13, 16, 22, 23]
SIX_MP_CENSORED = [6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
SIX_MP_TABLE = {
    6: (0.857, 0.076),
    7: (0.807, 0.087),
    10: (0.753, 0.096),
    13: (0.690, 0.107),
    16: (0.627, 0.114),
    22: (0.538, 0.128),
    23: (0.448, 0.135),
}


def test_six_mp_textbook_values() -> None:
    times = [float(t) for t in SIX_MP_RELAPSE + SIX_MP_CENSORED]
    events = [True] * len(SIX_MP_RELAPSE) + [False] * len(SIX_MP_CENSORED)
    curve = kaplan_meier(times, events, SIX_MP_TABLE)
    for point in curve:
        survival, std_error = SIX_MP_TABLE[int(point.days)]
        assert point.survival == pytest.approx(survival, abs=5e-4)
        assert point.std_error == pytest.approx(std_error, abs=5e-4)
    # At week 6 all 21 are at risk; 3 relapses and 1 censoring happen at week 6.
    assert (curve[0].at_risk, curve[0].events, curve[0].censored) == (21, 3, 1)


def test_small_example_by_hand() -> None:
    # times 1 2 2+ 3 4+: S(1) = 4/5; at 2, 4 at risk, 1 death → 0.8·3/4 = 0.6;
    # at 3, 2 at risk (3 and 4+), 1 death → 0.3; no death at 4 → 0.3.
    curve = kaplan_meier([1, 2, 2, 3, 4], [True, True, False, True, False], [0, 1, 2, 3, 4, 9])
    assert [round(p.survival, 10) for p in curve] == [1.0, 0.8, 0.6, 0.3, 0.3, 0.3]
    assert [p.at_risk for p in curve] == [5, 5, 4, 2, 1, 0]
    assert [p.events for p in curve] == [0, 1, 1, 1, 0, 0]
    assert [p.censored for p in curve] == [0, 0, 1, 0, 1, 0]
    # Greenwood at t=2: S² (1/(5·4) + 1/(4·3)).
    assert curve[2].std_error == pytest.approx(0.6 * math.sqrt(1 / 20 + 1 / 12))


def test_everyone_dies() -> None:
    curve = kaplan_meier([5, 10], [True, True], [10])
    assert curve[0].survival == 0.0 and curve[0].std_error == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        kaplan_meier([1.0], [True, False], [1])
    with pytest.raises(ValueError):
        kaplan_meier([-1.0], [True], [1])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=40),
    st.lists(st.integers(0, 45), min_size=1, max_size=5),
)
def test_agrees_with_the_definition(data: list[tuple[int, bool]], points: list[int]) -> None:
    times = [float(t) for t, _ in data]
    events = [e for _, e in data]
    for point in kaplan_meier(times, events, points):
        expected = 1.0
        for t in sorted({t for t, e in data if e and t <= point.days}):
            at_risk = sum(1 for u, _ in data if u >= t)
            deaths = sum(1 for u, e in data if e and u == t)
            expected *= 1 - deaths / at_risk
        assert point.survival == pytest.approx(expected)
        assert point.at_risk == sum(1 for u, _ in data if u >= point.days)
