"""The example in docs/disclosure.md decides as the page says (so the page cannot rot)."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from pht_contract.manifests import ResultManifest
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure import GateDecision, Outcome, Rule, gate

DOC = Path(__file__).resolve().parents[3] / "docs" / "disclosure.md"


IMAGE = "registry.example.org/pht/km@sha256:" + "b" * 64
#: When the gate decides: inside the review's validity.
MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REVIEW = {
    "digest": IMAGE.split("@")[1],
    "reviewer": "steward@station.local",
    "reviewedAt": "2026-01-05T09:00:00Z",
    "expiresAt": "2026-07-05T09:00:00Z",
    "notes": "counts and mean days by stage only",
}


def _policy(**fields: object) -> DisclosurePolicy:
    """The page's policy: ``stage`` releasable, a current review of the train's image."""
    return DisclosurePolicy.model_validate(
        {
            "releasableVariables": [{"name": "stage", "values": ["I", "II", "IIIa", "IIIb"]}],
            "reviewedImages": [REVIEW],
            **fields,
        }
    )


def evaluate(manifest: ResultManifest, policy: DisclosurePolicy, **kw: object) -> GateDecision:
    return gate.evaluate(manifest, policy, audited_cohort=60, image=IMAGE, at=MOMENT)


def _example() -> ResultManifest:
    (block,) = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return ResultManifest.model_validate(json.loads(block))


def test_documented_example_is_released_with_a_suppressed_row() -> None:
    decision = evaluate(_example(), _policy(), audited_cohort=60)
    assert decision.outcome == Outcome.RELEASED
    assert decision.released.tables[0].rows[1] == [None, None, None]
    assert decision.released.tables[0].rows[0] == ["I", 16, 905.0]


def test_documented_variants() -> None:
    blocking = _policy(smallCellAction="Block")
    blocked = evaluate(_example(), blocking, audited_cohort=60)
    assert (blocked.outcome, blocked.rule) == (Outcome.BLOCKED, Rule.MIN_CELL_COUNT)
    chatty = _example().model_copy(update={"messages": ["converged"]})
    held = evaluate(chatty, _policy(), audited_cohort=60)
    assert (held.outcome, held.rule) == (Outcome.HELD, Rule.FREE_TEXT_HELD)


def test_documented_defaults_hold_for_a_steward() -> None:
    unreviewed = gate.evaluate(
        _example(),
        DisclosurePolicy(releasable_variables=_policy().releasable_variables),
        audited_cohort=60,
        image=IMAGE,
        at=MOMENT,
    )
    assert (unreviewed.outcome, unreviewed.rule) == (Outcome.HELD, Rule.STEWARD_REVIEW_REQUIRED)
    no_variables = gate.evaluate(
        _example(),
        DisclosurePolicy.model_validate({"reviewedImages": [REVIEW]}),
        audited_cohort=60,
        image=IMAGE,
        at=MOMENT,
    )
    assert (no_variables.outcome, no_variables.rule) == (
        Outcome.BLOCKED,
        Rule.LABEL_NOT_RELEASABLE,
    )


def test_every_rule_is_documented() -> None:
    text = DOC.read_text()
    missing = [rule.value for rule in Rule if f"`{rule.value}`" not in text]
    assert missing == []
