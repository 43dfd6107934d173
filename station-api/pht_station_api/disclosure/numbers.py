"""Numbers as they may leave: IEEE doubles, rounded to the policy's significant digits.

JSON integers are unbounded, so one table cell could hold an integer thousands of digits long
that encodes a whole cohort. A released number must be what a statistic is: a finite double
(integers only up to 2**53, the largest a double holds exactly), and derived numbers leave
rounded to ``significantDigits``, which bounds what any one number can carry.
"""

import math
from typing import Final

#: The largest magnitude up to which every integer is exactly a double.
MAX_EXACT_INTEGER: Final = 2**53


def as_double(value: object) -> float | None:
    """The value as a finite double, or ``None`` when it is not one (text, bool, huge, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Compare before converting: float() of a huge integer raises or loses the point.
        return float(value) if -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def round_significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (decimal, as a reader sees it)."""
    if value == 0.0:
        return 0.0
    return float(f"{value:.{digits}g}")
