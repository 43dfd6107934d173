"""The disclosure rules a station applies to the real contributions behind a computed cell.

Pure functions: given what stands behind one cell, the name of the first rule it breaks, or
``None`` when it may be released. The rules follow ACRO's (SACRO) definitions, with the
station's policy supplying the parameters:

* **Frequency** (``MinCellCount``): a count, or the number of contributors to a summed
  statistic, below ``k`` (``minCellCount``) is suppressed; ACRO fails a cell when
  ``count < threshold``, the same comparison.
* **Zeros** (``ZeroCell``): a count of zero is suppressed when ``zerosAreDisclosive`` (it says
  that every patient of a group lacks something); a statistic over nobody is never released.
* **N-k dominance** (``Dominance``): a summed statistic is suppressed when its ``n`` largest
  contributions make up ``k`` of its total *or more* — ACRO fails a cell when
  ``top_n_sum / sum >= safe_nk_k``, so a cell exactly at the share is suppressed.
* **p-ratio** (``PRatio``): a summed statistic is suppressed when the total less its two
  largest contributions is *less than* ``p`` times the largest — then the second largest
  contributor could estimate the largest within ``p`` of it. ACRO fails a cell when
  ``(sum - top1 - top2) / top1 < safe_pratio_p``, so a cell exactly at ``p`` is released.

Deliberate differences from ACRO: contributions are taken in **absolute value**, so a cell with
negative contributions is judged too (ACRO returns it for manual review: dominance is not
defined for negative values), and a large negative contribution dominates like a large positive
one. A cell whose contributions are **all zero** has no dominant contributor and passes the
dominance and p-ratio rules (as in ACRO, where ``0/0`` and a zero largest value pass); the
frequency rule still applies. Thresholds are compared exactly: sums are exact rational sums of
the doubles, and ``dominanceK`` and ``pRatio`` are taken as the decimals they are written as, so
a share of exactly 0.9 meets a ``dominanceK`` of 0.9.
"""

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Final

from pht_contract.policies import AggregateRules

MIN_CELL_COUNT: Final = "MinCellCount"
ZERO_CELL: Final = "ZeroCell"
DOMINANCE: Final = "Dominance"
P_RATIO: Final = "PRatio"


def check_count(count: int, k: int, rules: AggregateRules) -> str | None:
    """The rule a count of ``count`` patients breaks: ``MinCellCount``, ``ZeroCell`` or none."""
    if count == 0:
        return ZERO_CELL if rules.zeros_are_disclosive else None
    if count < k:
        return MIN_CELL_COUNT
    return None


def _exact_sum(values: Iterable[float]) -> Fraction:
    """The exact sum of finite doubles (no rounding, no overflow)."""
    ratios = [value.as_integer_ratio() for value in values]
    if not ratios:
        return Fraction(0)
    # Every denominator is a power of two: bring all to the largest and add the numerators.
    common = max(denominator for _, denominator in ratios)
    total = sum(numerator * (common // denominator) for numerator, denominator in ratios)
    return Fraction(total, common)


def _decimal(parameter: float) -> Fraction:
    """A policy parameter as the decimal it is written as (``0.9`` is nine tenths exactly)."""
    return Fraction(repr(parameter))


def check_contributions(values: Sequence[float], k: int, rules: AggregateRules) -> str | None:
    """The first rule a summed statistic over ``values`` (one per patient) breaks, or ``None``.

    ``values`` are the finite contributions behind one cell (a mean's or a total's). Fewer than
    ``k`` contributors: ``MinCellCount`` (none at all: ``ZeroCell`` when zeros are disclosive,
    otherwise ``MinCellCount``, as there is no statistic to release); then ``Dominance``, then
    ``PRatio``, on the absolute contributions.
    """
    if not values:
        return ZERO_CELL if rules.zeros_are_disclosive else MIN_CELL_COUNT
    if len(values) < k:
        return MIN_CELL_COUNT
    magnitudes = sorted((abs(value) for value in values), reverse=True)
    total = _exact_sum(magnitudes)
    if total == 0:
        return None
    if _exact_sum(magnitudes[: rules.dominance_n]) >= _decimal(rules.dominance_k) * total:
        return DOMINANCE
    largest = Fraction(magnitudes[0])
    second = Fraction(magnitudes[1]) if len(magnitudes) > 1 else Fraction(0)
    if total - largest - second < _decimal(rules.p_ratio) * largest:
        return P_RATIO
    return None
