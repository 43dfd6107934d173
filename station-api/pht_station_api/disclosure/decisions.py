"""What the gate decides, and the named rule behind every decision.

A finding names its rule and *where* (a table, a statistic or a model file by its declared name,
which the manifest schema bounds to identifiers; for a refused plot also the reason in a few
fixed words), never a cell value: a blocked result's reason
must not itself disclose what it protects.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from pht_contract.manifests import ResultManifest


class Outcome(StrEnum):
    RELEASED = "Released"
    HELD = "Held"
    BLOCKED = "Blocked"


class Rule(StrEnum):
    RESULT_TOO_LARGE = "ResultTooLarge"
    MIN_COHORT = "MinCohort"
    MIN_CELL_COUNT = "MinCellCount"
    INVALID_COUNT = "InvalidCount"
    COUNT_COLUMN_REQUIRED = "CountColumnRequired"
    ZERO_COUNT_ROW = "ZeroCountRow"
    COUNTS_EXCEED_COHORT = "CountsExceedCohort"
    ROW_LEVEL_FORBIDDEN = "RowLevelForbidden"
    ROW_LEVEL_REVIEW = "RowLevelReview"
    COHORT_SIZE_MISMATCH = "CohortSizeMismatch"
    COHORT_UNVERIFIED = "CohortUnverified"
    MODEL_FORMAT_REFUSED = "ModelFormatRefused"
    MODEL_INTEGRITY = "ModelIntegrity"
    PICKLE_REFUSED = "PickleRefused"
    MODEL_TOO_LARGE_TO_READ = "ModelTooLargeToRead"
    MALFORMED_MODEL_ARCHIVE = "MalformedModelArchive"
    MODEL_FREE_CONTENT = "ModelFreeContent"
    MANUAL_RELEASE_REQUIRED = "ManualReleaseRequired"
    DIFFERENCING = "Differencing"
    FREE_TEXT_HELD = "FreeTextHeld"
    PLOT_HELD = "PlotHeld"
    INVALID_PLOT = "InvalidPlot"
    INVALID_MANIFEST = "InvalidManifest"
    LABEL_NOT_RELEASABLE = "LabelNotReleasable"
    DUPLICATE_GROUP_ROW = "DuplicateGroupRow"
    INVALID_NUMBER = "InvalidNumber"
    TOO_MANY_CELLS = "TooManyCells"
    TOO_MANY_LABELLED_ROWS = "TooManyLabelledRows"
    VALUES_EXCEED_COHORT = "ValuesExceedCohort"
    UNREADABLE_MODEL = "UnreadableModel"
    STEWARD_REVIEW_REQUIRED = "StewardReviewRequired"


#: Findings that only modify the result (suppressed cells) do not stop a release.
SUPPRESSED = "Suppressed"


@dataclass(frozen=True)
class Finding:
    rule: Rule
    #: Released (with suppression), Held or Blocked.
    effect: Outcome | str
    #: The table, statistic, model or plot by its declared name; ``None`` for the whole result.
    where: str | None = None

    def describe(self) -> str:
        place = f" ({self.where})" if self.where else ""
        return f"{self.rule.value}{place}: {self.effect}"


@dataclass(frozen=True)
class GateDecision:
    outcome: Outcome
    #: The deciding rule: the first block, else the first hold; ``None`` when released.
    rule: Rule | None
    findings: tuple[Finding, ...] = ()
    #: The manifest as it would leave: small cells suppressed, statistics dropped.
    released: ResultManifest = field(default_factory=ResultManifest)
    #: The declared cohort sizes this result discloses, for the differencing ledger.
    cohorts: tuple[int, ...] = ()
    suppressed_cells: int = 0


def decide(
    findings: list[Finding],
    released: ResultManifest,
    cohorts: tuple[int, ...],
    suppressed_cells: int,
) -> GateDecision:
    """Blocks win over holds, holds over releases; the first finding of a kind names the rule."""
    for outcome in (Outcome.BLOCKED, Outcome.HELD):
        deciding = next((f for f in findings if f.effect == outcome), None)
        if deciding is not None:
            # A blocked result keeps nothing that could leave, not even in memory.
            kept = ResultManifest() if outcome == Outcome.BLOCKED else released
            return GateDecision(
                outcome, deciding.rule, tuple(findings), kept, cohorts, suppressed_cells
            )
    return GateDecision(
        Outcome.RELEASED, None, tuple(findings), released, cohorts, suppressed_cells
    )
