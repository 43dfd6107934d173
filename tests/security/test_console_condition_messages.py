"""What a researcher writes into a Train comes back in the operator's messages: quoted, inert.

A refusal is written to the Train's conditions and to an Event (``kubectl describe``, ``kubectl
get events``, the operator's log), which a steward reads in a terminal. A graph IRI in
``spec.graphs`` may hold characters a terminal acts on (the IRI pattern refuses whitespace
only): the refusal quotes it with those characters escaped, so it can neither clear the
steward's screen, retitle their terminal, nor reverse the text around it.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from pht_contract.conditions import Reason
from pht_contract.evaluation import evaluate
from pht_contract.policies import StationPolicy
from pht_contract.trains import Train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HOSTILE_GRAPHS = {
    "clear screen": "urn:pht:graph:x\x1b[2J\x1b[H",
    "terminal title": "urn:pht:graph:x\x1b]0;approved\x07",
    "right-to-left override": "urn:pht:graph:x\u202edevlosbo",
    "delete": "urn:pht:graph:x\x7f\x7f\x7f",
}


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def _controls(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) in {"Cc", "Cf"}]


@pytest.mark.parametrize("graph", list(HOSTILE_GRAPHS.values()), ids=list(HOSTILE_GRAPHS))
def test_a_refused_graph_is_quoted_without_its_control_characters(graph: str) -> None:
    train = _load(EXAMPLES / "trains" / "kaplan-meier.yaml")
    train["spec"]["graphs"] = [graph]
    spec = Train.model_validate(train).spec  # the contract accepts it, as the CRD does
    policy = StationPolicy.model_validate(_load(EXAMPLES / "policies" / "station-policy.yaml"))
    decision = evaluate(spec, policy.spec)
    assert not decision.admitted
    refused = [v for v in decision.violations if v.reason == Reason.GRAPH_NOT_ALLOWED]
    assert refused, decision.message
    assert _controls(decision.message) == []
    assert all(_controls(str(violation)) == [] for violation in decision.violations)
