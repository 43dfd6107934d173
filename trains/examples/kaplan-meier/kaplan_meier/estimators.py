"""The product-limit (Kaplan–Meier) estimator with Greenwood's variance, standard library only.

Survival is reported at requested time points only, never at each event time: a curve listed
event by event would publish individual patients' days of death.
"""

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CurvePoint:
    """The estimate at one time point and the counts behind it."""

    days: float
    survival: float
    std_error: float
    #: Patients still followed at ``days`` (time ≥ days).
    at_risk: int
    #: Deaths and censorings since the previous time point (or since day 0), up to ``days``.
    events: int
    censored: int


def kaplan_meier(
    times: Sequence[float], events: Sequence[bool], time_points: Iterable[float]
) -> list[CurvePoint]:
    """S(t) = Π over death times tᵢ ≤ t of (1 − dᵢ/nᵢ), nᵢ the number with time ≥ tᵢ.

    Censorings tied with deaths count as still at risk at that time (the usual convention).
    """
    if len(times) != len(events):
        raise ValueError("times and events differ in length")
    deaths: dict[float, int] = {}
    for time, dead in zip(times, events, strict=True):
        if time < 0 or not math.isfinite(time):
            raise ValueError("survival times are finite and non-negative")
        if dead:
            deaths[time] = deaths.get(time, 0) + 1
    ordered = sorted(times)
    death_times = sorted(deaths)
    points = []
    previous = -math.inf
    for point in sorted(time_points):
        survival, greenwood = 1.0, 0.0
        for time in death_times:
            if time > point:
                break
            d = deaths[time]
            n = len(ordered) - bisect_left(ordered, time)
            survival *= 1.0 - d / n
            greenwood += d / (n * (n - d)) if n > d else math.inf
        in_window = [
            dead for time, dead in zip(times, events, strict=True) if previous < time <= point
        ]
        points.append(
            CurvePoint(
                days=point,
                survival=survival,
                std_error=survival * math.sqrt(greenwood) if survival > 0 else 0.0,
                at_risk=len(ordered) - bisect_left(ordered, point),
                events=sum(in_window),
                censored=len(in_window) - sum(in_window),
            )
        )
        previous = point
    return points
