"""The per-requester differencing ledger.

Two releases over cohorts that differ by one patient reveal that patient by subtraction (the
classic differencing attack). The ledger remembers the cohort sizes each requester has already
received; a new result whose cohort differs from one of them by more than zero but fewer than
``differencingThreshold`` patients is held for a steward. Keyed by requester, so a researcher
cannot step around it by submitting a new train.
"""

import threading
from collections.abc import Iterable


class DifferencingLedger:
    """Released cohort sizes per requester; serialisable so the result store can persist it."""

    def __init__(self, entries: dict[str, list[int]] | None = None) -> None:
        self._released: dict[str, set[int]] = {k: set(v) for k, v in (entries or {}).items()}
        self._lock = threading.Lock()

    def released_cohorts(self, requester: str) -> frozenset[int]:
        with self._lock:
            return frozenset(self._released.get(requester, set()))

    def record_release(self, requester: str, cohorts: Iterable[int]) -> None:
        with self._lock:
            self._released.setdefault(requester, set()).update(cohorts)

    def to_json(self) -> dict[str, list[int]]:
        with self._lock:
            return {k: sorted(v) for k, v in self._released.items()}


def differs_too_little(cohorts: Iterable[int], earlier: Iterable[int], threshold: int) -> bool:
    """True when some cohort is within (0, threshold) patients of an earlier released one."""
    previous = list(earlier)
    return any(0 < abs(new - old) < threshold for new in cohorts for old in previous)
