"""Counting distinct patients per category, for each characteristic.

A patient appears once per category even when the store returns several rows for them (two
histology findings, say). Values the store leaves out or codes as missing are counted as
``missing`` rather than dropped, so every table sums to the cohort.
"""

from collections.abc import Iterable, Mapping, Sequence

from cohort_summary.terms import LABELS, MISSING
from pht_train import Value, category_label

UNKNOWN = "missing"


def label(value: Value) -> str:
    if value is None or value == MISSING or (isinstance(value, str) and not value.strip()):
        return UNKNOWN
    if isinstance(value, str) and value in LABELS:
        return LABELS[value]
    return category_label(value)


def count_patients(rows: Iterable[Mapping[str, Value]], characteristic: str) -> dict[str, int]:
    """Distinct patients per label of ``characteristic``, in label order."""
    seen: dict[str, set[str]] = {}
    for row in rows:
        seen.setdefault(label(row.get(characteristic)), set()).add(str(row["patient"]))
    return {name: len(patients) for name, patients in sorted(seen.items())}


def summarise(
    rows: Sequence[Mapping[str, Value]], characteristics: Iterable[str]
) -> tuple[dict[str, dict[str, int]], int]:
    """Counts for each characteristic, and the number of distinct patients."""
    patients = {str(row["patient"]) for row in rows}
    return {c: count_patients(rows, c) for c in characteristics}, len(patients)
