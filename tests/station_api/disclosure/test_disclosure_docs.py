"""The example in docs/disclosure.md decides as the page says (so the page cannot rot)."""

import json
import re
from pathlib import Path

from pht_contract.manifests import ResultManifest
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure import Outcome, Rule, evaluate

DOC = Path(__file__).resolve().parents[3] / "docs" / "disclosure.md"


def _example() -> ResultManifest:
    (block,) = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return ResultManifest.model_validate(json.loads(block))


def test_documented_example_is_released_with_a_suppressed_row() -> None:
    decision = evaluate(_example(), DisclosurePolicy(), audited_cohort=60)
    assert decision.outcome == Outcome.RELEASED
    assert decision.released.tables[0].rows[1] == [None, None, None]
    assert decision.released.tables[0].rows[0] == ["I", 16, 905.0]


def test_documented_variants() -> None:
    blocking = DisclosurePolicy(small_cell_action="Block")
    blocked = evaluate(_example(), blocking, audited_cohort=60)
    assert (blocked.outcome, blocked.rule) == (Outcome.BLOCKED, Rule.MIN_CELL_COUNT)
    chatty = _example().model_copy(update={"messages": ["converged"]})
    held = evaluate(chatty, DisclosurePolicy(), audited_cohort=60)
    assert (held.outcome, held.rule) == (Outcome.HELD, Rule.FREE_TEXT_HELD)


def test_every_rule_is_documented() -> None:
    text = DOC.read_text()
    missing = [rule.value for rule in Rule if f"`{rule.value}`" not in text]
    assert missing == []
