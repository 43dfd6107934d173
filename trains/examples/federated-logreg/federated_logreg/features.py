"""From query rows to a design matrix and a 2-year survival outcome.

Every station must build exactly the same columns, or the federated sums are meaningless:
the feature list is fixed here, age is scaled with constants given by the coordinator (not
with each station's own mean), and overall stage is coded against stage I. The outcome is 1
for a patient alive at the horizon (follow-up ≥ horizon), 0 for one who died before it; a
patient censored alive before the horizon has no known outcome and is left out.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from federated_logreg.terms import ALIVE, DEAD, FEMALE, MALE
from pht_train import Value

FEATURES = ("intercept", "age", "male", "stage_ii", "stage_iiia", "stage_iiib")
STAGE_COLUMNS = {"ii": "stage_ii", "iiia": "stage_iiia", "iiib": "stage_iiib"}


@dataclass(frozen=True)
class Scaling:
    age_centre: float = 70.0
    age_scale: float = 10.0
    horizon_days: float = 730.0


@dataclass(frozen=True)
class Design:
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    #: Rows left out: a feature or the outcome could not be read.
    excluded: int


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _male(value: Value) -> float | None:
    text = str(value).strip().lower() if value is not None else ""
    if value == MALE or text in ("male", "m"):
        return 1.0
    if value == FEMALE or text in ("female", "f"):
        return 0.0
    return None


def _dead(value: Value) -> bool | None:
    if value == DEAD or value is True or value == 1 or str(value).lower() in ("dead", "true"):
        return True
    if value == ALIVE or value is False or value == 0 or str(value).lower() in ("alive", "false"):
        return False
    return None


def _stage(value: Value) -> list[float] | None:
    text = str(value).strip().lower() if value is not None else ""
    if text == "i":
        return [0.0, 0.0, 0.0]
    if text in STAGE_COLUMNS:
        return [1.0 if text == key else 0.0 for key in STAGE_COLUMNS]
    return None


def outcome(days: float, dead: bool, horizon: float) -> float | None:
    """1 = alive at the horizon, 0 = died before it, None = censored before it (unknown)."""
    if days >= horizon:
        return 1.0
    return 0.0 if dead else None


def design(rows: Iterable[Mapping[str, Value]], scaling: Scaling) -> Design:
    """One row per patient (the first readable one) with :data:`FEATURES` columns."""
    xs: list[list[float]] = []
    ys: list[float] = []
    seen: set[str] = set()
    excluded = 0
    for row in rows:
        patient = str(row.get("patient"))
        if patient in seen:
            continue
        age = _number(row.get("age"))
        male = _male(row.get("sex"))
        stage = _stage(row.get("stage"))
        days = _number(row.get("days"))
        dead = _dead(row.get("dead"))
        if age is None or male is None or stage is None or days is None or dead is None:
            excluded += 1
            continue
        y = outcome(days, dead, scaling.horizon_days)
        if y is None:
            excluded += 1
            continue
        seen.add(patient)
        xs.append([1.0, (age - scaling.age_centre) / scaling.age_scale, male, *stage])
        ys.append(y)
    x = np.array(xs, dtype=np.float64).reshape(len(xs), len(FEATURES))
    return Design(x, np.array(ys, dtype=np.float64), excluded)
