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

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Final

from pht_contract.policies import AggregateRules

MIN_CELL_COUNT: Final = "MinCellCount"
ZERO_CELL: Final = "ZeroCell"
DOMINANCE: Final = "Dominance"
P_RATIO: Final = "PRatio"
#: Every contributor has the same value: the statistic tells each patient's value.
NO_VARIATION: Final = "NoVariation"


def check_count(count: int, k: int, rules: AggregateRules) -> str | None:
    """The rule a count of ``count`` patients breaks: ``MinCellCount``, ``ZeroCell`` or none."""
    if count == 0:
        return ZERO_CELL if rules.zeros_are_disclosive else None
    if count < k:
        return MIN_CELL_COUNT
    return None


def as_integers(values: Iterable[float]) -> tuple[list[int], int]:
    """Finite doubles as integer numerators over one power-of-two denominator (exact)."""
    ratios = [value.as_integer_ratio() for value in values]
    # Every denominator is a power of two: bring all to the largest.
    common = max((denominator for _, denominator in ratios), default=1)
    return [numerator * (common // denominator) for numerator, denominator in ratios], common


def _exact_sum(values: Iterable[float]) -> Fraction:
    """The exact sum of finite doubles (no rounding, no overflow)."""
    numerators, denominator = as_integers(values)
    return Fraction(sum(numerators), denominator)


def _decimal(parameter: float) -> Fraction:
    """A policy parameter as the decimal it is written as (``0.9`` is nine tenths exactly)."""
    return Fraction(repr(parameter))


def check_contributions(values: Sequence[float], k: int, rules: AggregateRules) -> str | None:
    """The first rule a summed statistic over ``values`` (one per patient) breaks, or ``None``.

    ``values`` are the finite contributions behind one cell (a mean's or a total's). Fewer than
    ``k`` contributors: ``MinCellCount`` (none at all: ``ZeroCell`` when zeros are disclosive,
    otherwise ``MinCellCount``, as there is no statistic to release); then, while zeros are
    disclosive, ``NoVariation`` when every contributor has the same value (the mean is then each
    patient's value, as a zero count says each patient lacks something); then ``Dominance``,
    then ``PRatio``, on the absolute contributions.
    """
    if not values:
        return ZERO_CELL if rules.zeros_are_disclosive else MIN_CELL_COUNT
    if len(values) < k:
        return MIN_CELL_COUNT
    if rules.zeros_are_disclosive and len(set(values)) == 1:
        return NO_VARIATION
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


#: What a reader knows of an emptied cell from its rule: at least ``floor``, at most ``ceiling``
#: (``None``: no upper bound is known, as for a cell emptied as a complement).
Bounds = tuple[int, int | None]


def _shortfall(
    counts: Sequence[int], emptied: Mapping[int, Bounds], k: int, protected: Iterable[int]
) -> tuple[int, bool]:
    """How a reader's bounds on the protected cells fall short of ``floor … k - 1``.

    The emptied cells sum to ``H`` (the cohort size less the released counts). A cell is at
    most ``H`` less the other cells' floors, and at least ``H`` less their ceilings when every
    one of them has one. Returns how many patients more the emptied cells would need to hold
    for every upper bound to reach ``k - 1`` (0 or less: they do), and whether some lower
    bound is above its cell's floor (only a cell of unknown ceiling joining them restores it).
    """
    hidden = sum(counts[row] for row in emptied)
    floors = sum(floor for floor, _ in emptied.values())
    known = [ceiling for _, ceiling in emptied.values() if ceiling is not None]
    unknown, ceilings = len(emptied) - len(known), sum(known)
    need, lower_too_high = -hidden, False
    for row in protected:
        floor, ceiling = emptied[row]
        target = k - 1 if ceiling is None else min(k - 1, ceiling)
        need = max(need, target - (hidden - (floors - floor)))
        if unknown - (ceiling is None) == 0:
            lowest = hidden - (ceilings - (ceiling or 0))
            lower_too_high = lower_too_high or lowest > floor
    return need, lower_too_high


def complementary_cells(
    counts: Sequence[int],
    emptied: Mapping[int, Bounds],
    k: int,
    rules: AggregateRules,
    released_floor: int,
) -> list[int] | None:
    """The further cells to empty so that no emptied small cell can be narrowed down.

    A table's cohort size is a total: less the released counts it gives the sum of the emptied
    cells. ``emptied`` maps each emptied cell to what a reader knows of it from its rule (a
    small count: 0 or 1 to ``k - 1``); a cell emptied now from the released ones is known to
    hold at least ``released_floor`` and has no known ceiling. A small cell (``0 < count < k``,
    or a zero when zeros are disclosive) is protected while a reader can place it anywhere
    from its floor to ``k - 1`` (its ceiling, when lower). While one is not, released cells
    join the emptied ones: the smallest that closes the gap first, else the largest. ``None``:
    even emptying every cell leaves a small cell narrowed down (the table may not leave).
    """
    bounds = dict(emptied)
    protected = [
        row
        for row in bounds
        if 0 < counts[row] < k or (counts[row] == 0 and rules.zeros_are_disclosive)
    ]
    candidates = sorted(
        (count - released_floor, row)
        for row, count in enumerate(counts)
        if row not in bounds and count > 0
    )
    added: list[int] = []
    while protected:
        need, lower_too_high = _shortfall(counts, bounds, k, protected)
        if need <= 0 and not lower_too_high:
            break
        if not candidates:
            return None
        closing = next((gain for gain in candidates if gain[0] >= need), candidates[-1])
        candidates.remove(closing)
        added.append(closing[1])
        bounds[closing[1]] = (released_floor, None)
    return added
