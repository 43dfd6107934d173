"""Reading the survival query's rows: days of follow-up and vital status, as each store spells it.

Stations map their data to the same ROO/NCIT terms, but a value may arrive as an NCIT code
(``ncit:C28554`` Dead), a boolean or a 0/1 number; survival days as an integer or a decimal.
Rows whose values cannot be read are left out (and so do not count in the cohort size).
"""

import math
from dataclasses import dataclass

from kaplan_meier.terms import ALIVE, DEAD, MISSING
from pht_train import Value, category_label

_DEAD_WORDS = {"1", "true", "dead", "deceased", "yes"}
_ALIVE_WORDS = {"0", "false", "alive", "no", "censored"}


@dataclass(frozen=True)
class SurvivalRecord:
    patient: str
    group: str
    days: float
    dead: bool


def vital_status(value: Value) -> bool | None:
    """True for a death, False for alive/censored, None when unknown."""
    if value is None or value == MISSING:
        return None
    if value == DEAD:
        return True
    if value == ALIVE:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return True if value == 1 else False if value == 0 else None
    text = str(value).strip().lower()
    return True if text in _DEAD_WORDS else False if text in _ALIVE_WORDS else None


def follow_up_days(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        days = float(value)
    else:
        try:
            days = float(str(value))
        except ValueError:
            return None
    return days if math.isfinite(days) and days >= 0 else None


def group_label(value: Value) -> str:
    if value is None or value == MISSING or (isinstance(value, str) and not value.strip()):
        return "missing"
    return category_label(value)


def read_records(
    rows: list[dict[str, Value]], group_by: str | None
) -> tuple[list[SurvivalRecord], int]:
    """One record per patient (the first readable row); also the number of rows left out."""
    records: dict[str, SurvivalRecord] = {}
    skipped = 0
    for row in rows:
        patient = str(row.get("patient"))
        if patient in records:
            continue
        days = follow_up_days(row.get("days"))
        dead = vital_status(row.get("dead"))
        if days is None or dead is None:
            skipped += 1
            continue
        group = group_label(row.get(group_by)) if group_by else "All"
        records[patient] = SurvivalRecord(patient, group, days, dead)
    return list(records.values()), skipped
