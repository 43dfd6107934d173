"""The covert-channel budget per requester, computed from the inventory and the policy's limits.

docs/security.md states the budget for the example StationPolicy; these tests compute it from
``pht_contract.covertchannels`` and that policy, and fail if it grows past what the page says.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pht_contract.covertchannels import (
    INVENTORY,
    RESEARCHER_READERS,
    Reader,
    RunLimits,
    Surface,
    bits_per_run,
    channels,
    requester_budget,
    scraper_budget,
)
from pht_contract.policies import StationPolicySpec

REPO = Path(__file__).resolve().parents[2]
SECURITY_DOC = REPO / "docs" / "security.md"

#: What docs/security.md states for the example policy (12-hour runs, 50 runs per standing
#: approval, 60 queries a minute), in bits.
STATED_FIELDS_PER_RUN = 450
STATED_RESEARCHER_PER_RUN = 44_000
STATED_REQUESTER_BUDGET = 2_200_000
STATED_SCRAPER_PER_RUN = 425_000
STATED_SCRAPER_BUDGET = 21_500_000


def _spaced(number: int) -> str:
    return f"{number:,}".replace(",", " ")


@pytest.fixture(scope="module")
def policy() -> StationPolicySpec:
    document = yaml.safe_load((REPO / "examples" / "policies" / "station-policy.yaml").read_text())
    return StationPolicySpec.model_validate(document["spec"])


def _fields_per_run(limits: RunLimits) -> float:
    """What a researcher reads that the station writes: all but the load on the station."""
    load = channels(Surface.EXTERNAL_ROUTE)["latency"]
    return bits_per_run(limits, RESEARCHER_READERS) - load.bits(limits)


def test_the_requester_budget_stays_under_the_stated_one(policy: StationPolicySpec) -> None:
    limits = RunLimits.of_policy(policy)
    assert (limits.run_seconds, limits.standing_max_runs) == (43200, 50)
    assert _fields_per_run(limits) <= STATED_FIELDS_PER_RUN
    per_run = bits_per_run(limits, RESEARCHER_READERS)
    assert per_run <= STATED_RESEARCHER_PER_RUN
    budget = requester_budget(policy)
    assert budget == pytest.approx(limits.standing_max_runs * per_run)
    assert budget <= STATED_REQUESTER_BUDGET


def test_the_scraper_budget_stays_under_the_stated_one(policy: StationPolicySpec) -> None:
    limits = RunLimits.of_policy(policy)
    assert bits_per_run(limits, {Reader.SCRAPER}) <= STATED_SCRAPER_PER_RUN
    assert scraper_budget(policy) <= STATED_SCRAPER_BUDGET


def test_the_security_page_states_these_numbers() -> None:
    text = SECURITY_DOC.read_text()
    for stated in (
        STATED_FIELDS_PER_RUN,
        STATED_RESEARCHER_PER_RUN,
        STATED_REQUESTER_BUDGET,
        STATED_SCRAPER_PER_RUN,
        STATED_SCRAPER_BUDGET,
    ):
        assert _spaced(stated) in text, f"docs/security.md should state {_spaced(stated)} bits"


def test_standing_approvals_multiply_the_runs(policy: StationPolicySpec) -> None:
    def with_runs(runs: int) -> StationPolicySpec:
        standing = policy.approval.standing.model_copy(update={"max_runs": runs})
        approval = policy.approval.model_copy(update={"standing": standing})
        return policy.model_copy(update={"approval": approval})

    assert requester_budget(with_runs(10)) == pytest.approx(10 * requester_budget(with_runs(1)))


def test_longer_runs_and_faster_queries_raise_the_bound(policy: StationPolicySpec) -> None:
    limits = RunLimits.of_policy(policy)
    longer = dataclasses.replace(limits, run_seconds=2 * limits.run_seconds)
    faster = dataclasses.replace(limits, queries_per_minute=2 * limits.queries_per_minute)
    assert bits_per_run(longer, RESEARCHER_READERS) > bits_per_run(limits, RESEARCHER_READERS)
    assert bits_per_run(faster, {Reader.SCRAPER}) > bits_per_run(limits, {Reader.SCRAPER})


def test_whole_minutes_shrink_what_the_status_times_carry(policy: StationPolicySpec) -> None:
    limits = RunLimits.of_policy(policy)
    by_the_second = dataclasses.replace(limits, time_step_seconds=1)
    status = [c for c in INVENTORY if c.surface == Surface.TRAIN_STATUS]
    coarse = sum(c.bits(limits) for c in status)
    precise = sum(c.bits(by_the_second) for c in status)
    # Four times a run can move (completion, duration, transitions, release): ~6 bits each.
    assert precise - coarse > 4 * 5.5
