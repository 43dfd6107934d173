"""Query rows → features (age, T and N stage as ordinals) and the 2-year survival outcome.

Scaling uses fixed constants (parameters), not the station's own statistics, so models trained
at different stations see the same input space. TX/NX (unknown stage) and missing ages are
left out; a patient censored alive before the horizon has no known outcome and is left out.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gpu_training_step.terms import ALIVE, DEAD, N_CODES, T_CODES
from pht_train import Value

FEATURES = ("age", "t_stage", "n_stage")
_T_ORDINAL = {iri: float(code[1]) for code, iri in T_CODES.items()}
_N_ORDINAL = {iri: float(code[1]) for code, iri in N_CODES.items()}


@dataclass(frozen=True)
class Scaling:
    age_centre: float = 70.0
    age_scale: float = 10.0
    horizon_days: float = 730.0


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _ordinal(value: Value, codes: Mapping[str, float], letter: str) -> float | None:
    """An NCIT stage code, a label like ``T2`` or a number like ``2.0``."""
    if isinstance(value, str) and value in codes:
        return codes[value]
    text = str(value).strip().upper().removeprefix(letter) if value is not None else ""
    number = _number(text)
    return number if number is not None and number.is_integer() and 0 <= number <= 4 else None


def _dead(value: Value) -> bool | None:
    if value == DEAD or value is True or str(value).lower() in ("1", "dead", "true"):
        return True
    if value == ALIVE or value is False or str(value).lower() in ("0", "alive", "false"):
        return False
    return None


def features(
    rows: Iterable[Mapping[str, Value]], scaling: Scaling
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``x`` (patients × :data:`FEATURES`) and ``y`` (1 = alive at the horizon), float32."""
    xs: list[list[float]] = []
    ys: list[float] = []
    seen: set[str] = set()
    for row in rows:
        patient = str(row.get("patient"))
        age = _number(row.get("age"))
        t = _ordinal(row.get("t"), _T_ORDINAL, "T")
        n = _ordinal(row.get("n"), _N_ORDINAL, "N")
        days = _number(row.get("days"))
        dead = _dead(row.get("dead"))
        if patient in seen or None in (age, t, n, days, dead):
            continue
        assert age is not None and t is not None and n is not None and days is not None
        if days < scaling.horizon_days and not dead:
            continue
        seen.add(patient)
        xs.append([(age - scaling.age_centre) / scaling.age_scale, t / 4.0, n / 3.0])
        ys.append(1.0 if days >= scaling.horizon_days else 0.0)
    x = np.array(xs, dtype=np.float32).reshape(len(xs), len(FEATURES))
    return x, np.array(ys, dtype=np.float32)
