"""The disclosure gate: one pure function from a result manifest to Released, Held or Blocked.

Inputs are the manifest, the ``DisclosurePolicy`` that admitted the train (its snapshot from
the registration, not whatever the policy says today), the cohort size the *audited queries*
saw, the cohort sizes already released to the same requester, and the moment of the decision
(an image review counts only between its date and its expiry). No I/O and no clock of its own,
so the property-based tests can drive it with arbitrary manifests.

The cohort the audit saw is the most distinct patients any of the train's query results bound.
When no query bound patient IRIs (aggregate-only queries), the audit cannot confirm the
algorithm's claims, so such a result is held (``CohortUnverified``) rather than trusted.

Every check runs on every result, but passing them releases a result only when the train's
image digest has a review in the policy that counts at the moment of the decision
(:mod:`.trust`) and the result has no plot (:mod:`.plots`); any other result is held for
a steward with the findings attached (``StewardReviewRequired``, named only when no more
specific rule holds or blocks it).
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import ValidationError

from pht_contract.aggregates import AggregateResult, AggregateStatus
from pht_contract.manifests import ResultManifest
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure.caps import review_caps
from pht_station_api.disclosure.decisions import Finding, GateDecision, Outcome, Rule, decide
from pht_station_api.disclosure.ledgers import LINKED, differs_too_little
from pht_station_api.disclosure.models import review_models
from pht_station_api.disclosure.plots import review_plots
from pht_station_api.disclosure.tables import review_tables
from pht_station_api.disclosure.trust import trusted_review, why_not_counted


def declared_cohorts(manifest: ResultManifest, audited: int | None) -> tuple[int, ...]:
    """Every cohort size the result discloses: the audited one, each table's, each n."""
    sizes = {t.cohort_size for t in manifest.tables} | {s.n for s in manifest.statistics}
    if audited is not None:
        sizes.add(audited)
    return tuple(sorted(sizes))


def evaluate(
    manifest: ResultManifest,
    policy: DisclosurePolicy,
    *,
    audited_cohort: int | None,
    released_cohorts: Iterable[int] = (),
    result_bytes: int = 0,
    image: str | None = None,
    at: datetime | None = None,
    signed_review: str | None = None,
) -> GateDecision:
    """The gate's decision; without ``at`` (the moment of the decision) no image review
    counts, so a result that passes every check is still held for a steward.
    ``signed_review``: the Train's signed review of its image, if it carries one."""
    if result_bytes > policy.max_result_bytes:
        return decide([Finding(Rule.RESULT_TOO_LARGE, Outcome.BLOCKED)], ResultManifest(), (), 0)
    findings: list[Finding] = []
    if audited_cohort is None:
        findings.append(Finding(Rule.COHORT_UNVERIFIED, Outcome.HELD))
    elif audited_cohort < policy.min_cohort:
        findings.append(Finding(Rule.MIN_COHORT, Outcome.BLOCKED))
    review = review_tables(manifest.tables, manifest.statistics, policy, audited_cohort)
    findings += review.findings
    findings += review_caps(manifest, review.tables, review.statistics, policy, audited_cohort)
    findings += review_models(manifest.models, policy)
    plots = review_plots(manifest.plots)
    findings += plots.findings
    if manifest.messages:
        findings.append(Finding(Rule.FREE_TEXT_HELD, Outcome.HELD))
    if policy.manual_release_for_all:
        findings.append(Finding(Rule.MANUAL_RELEASE_REQUIRED, Outcome.HELD))
    cohorts = declared_cohorts(manifest, audited_cohort)
    if differs_too_little(cohorts, released_cohorts, policy.differencing_threshold):
        findings.append(Finding(Rule.DIFFERENCING, Outcome.HELD))
    if trusted_review(policy, image, signed_review, at) is None:
        # Last, so that a more specific hold names the decision. A signed review that did not
        # count says why (for the steward; the Train's status names the rule only).
        why = why_not_counted(policy, image, signed_review, at)
        findings.append(Finding(Rule.STEWARD_REVIEW_REQUIRED, Outcome.HELD, why))
    released = manifest.model_copy(
        update={"tables": review.tables, "statistics": review.statistics, "plots": plots.plots}
    )
    return decide(findings, released, cohorts, review.suppressed_cells)


def evaluate_bytes(
    raw: bytes,
    policy: DisclosurePolicy,
    *,
    audited_cohort: int | None,
    released_cohorts: Iterable[int] = (),
    image: str | None = None,
    at: datetime | None = None,
    signed_review: str | None = None,
) -> GateDecision:
    """The gate on bytes as uploaded: anything that is not a valid manifest is blocked."""
    if len(raw) > policy.max_result_bytes:
        return decide([Finding(Rule.RESULT_TOO_LARGE, Outcome.BLOCKED)], ResultManifest(), (), 0)
    try:
        manifest = ResultManifest.model_validate_json(raw)
    except (ValidationError, ValueError):
        return decide([Finding(Rule.INVALID_MANIFEST, Outcome.BLOCKED)], ResultManifest(), (), 0)
    return evaluate(
        manifest,
        policy,
        audited_cohort=audited_cohort,
        released_cohorts=released_cohorts,
        result_bytes=len(raw),
        image=image,
        at=at,
        signed_review=signed_review,
    )


def station_computed(
    policy: DisclosurePolicy, aggregates: Sequence[AggregateResult]
) -> GateDecision:
    """The decision on a result that holds only aggregates the station computed itself.

    Their numbers come from the approved queries' answers and the approved declarations, never
    from the algorithm, and their own rules (:mod:`pht_station_api.aggregates`) already
    suppressed or withheld what must not leave; so they are released whatever the image, held
    only when the policy holds every result. The cohort sizes they disclose go to the
    differencing ledger like any result's.
    """
    findings: list[Finding] = []
    if policy.manual_release_for_all:
        findings.append(Finding(Rule.MANUAL_RELEASE_REQUIRED, Outcome.HELD))
    sizes = {a.table.cohort_size for a in aggregates if a.table is not None}
    sizes |= {a.model.n for a in aggregates if a.model is not None}
    computed = [a for a in aggregates if a.table is not None or a.model is not None]
    if len(computed) > 1 and (hides_something(aggregates) or len(sizes) > 1):
        # Side by side, one table is the margin of another (a count by stage beside a count by
        # stage and sex, an overall curve beside curves by stage): what one suppressed, or the
        # patients one left out, the others could give back. A steward looks.
        findings.append(Finding(Rule.DIFFERENCING, Outcome.HELD, LINKED))
    suppressed = sum(len(a.suppressed) for a in aggregates)
    return decide(findings, ResultManifest(), tuple(sorted(sizes)), suppressed)


def hides_something(aggregates: Sequence[AggregateResult]) -> bool:
    """Whether the aggregates left anything out that a reader must not recompute: a suppressed
    cell, a withheld aggregate, or patients left out of some of them."""
    if any(a.suppressed or a.status != AggregateStatus.RELEASED for a in aggregates):
        return True
    sizes = {a.table.cohort_size for a in aggregates if a.table is not None}
    sizes |= {a.model.n for a in aggregates if a.model is not None}
    return len(sizes) > 1 or any(a.left_out for a in aggregates)


def aggregates_shape(aggregates: Sequence[AggregateResult]) -> str | None:
    """A digest of what the aggregates are (names, kinds, queries, columns, group labels), not
    of their numbers: the same shape over the same patients is the same result again."""
    if not aggregates:
        return None
    shape = [
        [
            a.name,
            a.kind.value,
            a.query,
            [c.name for c in a.table.columns] if a.table else None,
            [[cell for cell, column in zip(row, a.table.columns, strict=True)
              if column.role == "Group"] for row in a.table.rows] if a.table else None,
            a.model.terms if a.model else None,
        ]
        for a in aggregates
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
