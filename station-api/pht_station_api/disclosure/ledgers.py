"""The differencing ledger: which patient sets the station's readers have already been given.

Two releases whose patient sets differ by a few patients reveal those patients by subtraction
(the classic differencing attack): a stage table over 172 patients and then over 171 tells the
reader the stage of the one left out; so does a table over the same number of patients with one
swapped. So the ledger compares *patient sets* — the keyed fingerprints of every patient the
train's audited queries bound (see :mod:`pht_station_api.patientsets`) — by their symmetric
difference, not by cohort size alone.

Patient sets are compared *station-wide*: a released result is readable by everyone RBAC
allows ``get`` on ``trains/results`` in the Train's namespace, the chart binds the same
researchers in every station namespace, and a requester keeps what they received wherever they
move — so any two results of the station may meet one reader. Sets are precise enough for that:
two honest studies over the same cohort bind the same patients (difference 0) or differ by far
more than a handful.

The patient set is what the queries bound, not what the algorithm counted: code may drop a
patient it was given (two runs of one approved query bind the same 60 patients, the second
declares a table over 59). So over the same or nearly nested patient sets (one within the
other but for fewer than k patients: code can only drop patients) the declared cohort sizes
are compared as well, and a declared cohort just below the result's own audited cohort is held
on its own (:func:`just_below`). Trackers over three or more results are not detected.

Where a side has no patient set (its queries bound no patient IRIs, e.g. aggregates only: the
gate holds such a result as ``CohortUnverified``; or sizes kept before patient sets), the
ledger falls back to the declared cohort sizes, so the steward deciding on it still sees the
``Differencing`` finding. Sizes of unrelated studies are often close, so that fallback looks
only within the result's reader scopes: its namespace and its admission-recorded requester.

Results that were released *and* results held for a steward are entries: a held result may be
released later, and the steward deciding on the second of two near-identical results must see
the rule. A result a steward blocks leaves the ledger (it never reaches a reader).
"""

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from pht_station_api.disclosure.decisions import Finding, GateDecision, Outcome, Rule, decide

NAMESPACE_SCOPE: Final = "namespace/"
REQUESTER_SCOPE: Final = "requester/"


def reader_scopes(namespace: str, requester: str | None) -> tuple[str, ...]:
    """Whose results the size fallback compares: the namespace's and the requester's."""
    scopes = [NAMESPACE_SCOPE + namespace]
    if requester:
        scopes.append(REQUESTER_SCOPE + requester)
    return tuple(scopes)


@dataclass(frozen=True)
class LedgerEntry:
    uid: str
    #: ``namespace/name`` of the Train, to name the earlier result to a steward.
    train: str
    scopes: frozenset[str]
    patients: frozenset[str]
    #: The cohort sizes the result declared (and the audited one): the fallback comparison.
    cohorts: frozenset[int] = frozenset()
    #: Whether the result left something out that a reader must not recompute: suppressed
    #: cells, or patients left out of some of its tables.
    hides: bool = False
    #: A digest of the station-computed tables' shape (names, kinds, queries, columns, labels):
    #: two results of the same shape over the same patients hold the same numbers. ``None`` for
    #: results the station did not compute.
    shape: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "train": self.train,
            "scopes": sorted(self.scopes),
            "patients": sorted(self.patients),
            "cohorts": sorted(self.cohorts),
            "hides": self.hides,
            "shape": self.shape,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "LedgerEntry":
        return cls(
            uid=str(value["uid"]),
            train=str(value["train"]),
            scopes=frozenset(str(s) for s in value["scopes"]),
            patients=frozenset(str(p) for p in value["patients"]),
            cohorts=frozenset(int(c) for c in value.get("cohorts", ())),
            # Entries written before these were kept: assume the worst.
            hides=bool(value.get("hides", True)),
            shape=str(value["shape"]) if value.get("shape") else None,
        )

    @classmethod
    def legacy(cls, key: str, sizes: Iterable[int]) -> "LedgerEntry":
        """Cohort sizes released before patient sets were kept, keyed ``organisation/requester``."""
        requester = key.partition("/")[2] or key
        return cls(
            uid=f"legacy/{key}",
            train="a result released before patient sets were kept",
            scopes=frozenset({REQUESTER_SCOPE + requester}),
            patients=frozenset(),
            cohorts=frozenset(int(s) for s in sizes),
        )


@dataclass(frozen=True)
class Overlap:
    """An earlier result too close to the new one."""

    earlier: LedgerEntry
    difference: int
    #: ``patient set``, or ``cohort size`` where a side had no patient set.
    compared: str = "patient set"


def too_close(patients: frozenset[str], earlier: frozenset[str], threshold: int) -> int | None:
    """The symmetric difference when it is within (0, threshold); ``None`` otherwise.

    Zero differences (the same patients) disclose nothing new; an empty set on either side
    means the audit saw no patients there, and such a result is held as ``CohortUnverified``.
    """
    if not patients or not earlier:
        return None
    if abs(len(patients) - len(earlier)) >= threshold:
        return None  # the difference is at least this: skip the set operation
    difference = len(patients ^ earlier)
    return difference if 0 < difference < threshold else None


def nested(patients: frozenset[str], earlier: frozenset[str], threshold: int) -> bool:
    """True when one patient set lies within the other but for fewer than ``threshold`` patients.

    An algorithm may drop patients in code, so what a table declares covers an unknown subset
    of what the train bound: two results whose sets are (nearly) nested may be over sets that
    differ by one patient even where the bound sets differ by many or by none.
    """
    if not patients or not earlier:
        return False
    return min(len(patients - earlier), len(earlier - patients)) < threshold


def sizes_near(sizes: frozenset[int], earlier: frozenset[int], threshold: int) -> int | None:
    """The smallest gap in (0, threshold) between a size of this result and an earlier one;
    ``None`` when there is none, or when both disclose exactly the same sizes (a rerun of the
    same analysis over the same patients tells nothing new)."""
    if sizes == earlier:
        return None
    gaps = [abs(new - old) for new in sizes for old in earlier]
    close = [gap for gap in gaps if 0 < gap < threshold]
    return min(close) if close else None


def _compare(
    entry: LedgerEntry,
    patients: frozenset[str],
    sizes: frozenset[int],
    scopes: frozenset[str],
    threshold: int,
) -> Overlap | None:
    if patients and entry.patients:
        difference = too_close(patients, entry.patients, threshold)
        if difference is not None:
            return Overlap(entry, difference)
        if not nested(patients, entry.patients, threshold):
            return None
        # The same (or nearly nested) patients: the declared sizes tell whether the algorithm
        # itself dropped a few of them (n then n-1 over one bound set).
        gap = sizes_near(sizes, entry.cohorts, threshold)
        return None if gap is None else Overlap(entry, gap, "cohort size")
    if not entry.scopes & scopes:
        return None
    gaps = [abs(new - old) for new in sizes for old in entry.cohorts]
    close = [gap for gap in gaps if 0 < gap < threshold]
    return Overlap(entry, min(close), "cohort size") if close else None


def just_below(sizes: Iterable[int], audited: int | None, threshold: int) -> bool:
    """True when a declared cohort is smaller than the audited cohort by fewer than
    ``threshold``: the algorithm dropped a few of the patients it was given, which is what one
    half of a differencing pair looks like (the other half being any result over all of them).
    """
    if audited is None:
        return False
    return any(0 < audited - size < threshold for size in sizes)


class DifferencingLedger:
    """Patient-set fingerprints and cohort sizes per result (in memory; the result archive keeps
    each entry in a file of its own, so a new entry never rewrites the others)."""

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, LedgerEntry] = {e.uid: e for e in entries}

    def closest(
        self,
        uid: str,
        scopes: Iterable[str],
        patients: frozenset[str],
        threshold: int,
        cohorts: Iterable[int] = (),
    ) -> Overlap | None:
        """The nearest earlier result within the threshold: any result of the station by
        patient set, a result sharing a reader scope by cohort size (the fallback)."""
        wanted = frozenset(scopes)
        sizes = frozenset(cohorts)
        found: Overlap | None = None
        with self._lock:
            candidates = [e for e in self._entries.values() if e.uid != uid]
        for entry in candidates:
            overlap = _compare(entry, patients, sizes, wanted, threshold)
            if overlap is not None and (found is None or overlap.difference < found.difference):
                found = overlap
        return found

    def linked(
        self, uid: str, patients: frozenset[str], hides: bool, shape: str | None
    ) -> LedgerEntry | None:
        """An earlier result over exactly these patients whose tables differ from these, when
        one of the two left something out: laid side by side, one can act as the margin that
        gives back what the other suppressed. Results of the same shape hold the same numbers."""
        if not patients:
            return None
        with self._lock:
            candidates = [e for e in self._entries.values() if e.uid != uid]
        for entry in candidates:
            if entry.patients == patients and (hides or entry.hides) and entry.shape != shape:
                return entry
        return None

    def record(self, entry: LedgerEntry) -> None:
        if not entry.patients and not entry.cohorts:
            return
        with self._lock:
            self._entries[entry.uid] = entry

    def forget(self, uid: str) -> bool:
        with self._lock:
            return self._entries.pop(uid, None) is not None

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries.values())


#: Where the finding for a declared cohort just below the audited one points.
BELOW_AUDITED: Final = "cohort size just below the audited cohort"


def hold_for_differencing(
    decision: GateDecision, overlap: Overlap | None, *, below_audited: bool = False
) -> GateDecision:
    """Add the ``Differencing`` hold to the gate's decision (blocks still win).

    The finding names the rule and the earlier Train (or that a declared cohort is just below
    the audited one), never the patients nor how many differ: stewards read findings, and the
    Train's status carries the rule.
    """
    if decision.outcome == Outcome.BLOCKED or (overlap is None and not below_audited):
        return decision
    findings = list(decision.findings)
    if overlap is not None:
        where = f"{overlap.compared} near {overlap.earlier.train}"
        findings.append(Finding(Rule.DIFFERENCING, Outcome.HELD, where))
    if below_audited:
        findings.append(Finding(Rule.DIFFERENCING, Outcome.HELD, BELOW_AUDITED))
    return decide(
        findings,
        decision.released,
        decision.cohorts,
        decision.suppressed_cells,
    )


#: Where the finding for tables laid side by side points.
LINKED: Final = "linked tables"


def hold_linked(decision: GateDecision, where: str) -> GateDecision:
    """Add a ``Differencing`` hold for linked tables (blocks still win)."""
    if decision.outcome == Outcome.BLOCKED:
        return decision
    findings = [*decision.findings, Finding(Rule.DIFFERENCING, Outcome.HELD, where)]
    return decide(findings, decision.released, decision.cohorts, decision.suppressed_cells)


def differs_too_little(cohorts: Iterable[int], earlier: Iterable[int], threshold: int) -> bool:
    """True when some cohort *size* is within (0, threshold) of an earlier one.

    For callers of the gate that pass released cohort sizes; the result archive does not (sizes
    miss a swapped patient), it asks :meth:`DifferencingLedger.closest`.
    """
    previous = list(earlier)
    return any(0 < abs(new - old) < threshold for new in cohorts for old in previous)
