"""A steward cannot issue a standing approval that covers their own Trains.

The chart's ValidatingAdmissionPolicy, evaluated offline exactly as rendered (cel-python, as in
tests/chart); the operator also ignores such an approval (test_approvals_parameters.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from chart.admission import failures, policy  # noqa: E402

STEWARD = "steward@maastro.example"


def _standing(requesters: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": "rounds", "namespace": "pht-requests"},
        "spec": {
            "standing": {
                "imageDigest": "sha256:" + "a" * 64,
                "queryHashes": ["b" * 64],
                "requesters": requesters,
                "maxRuns": 5,
                "expiresAt": "2027-01-01T00:00:00Z",
            },
            "decision": "Approve",
            "approver": STEWARD,
        },
    }


@pytest.mark.parametrize(
    ("requesters", "refused"),
    [(["oidc:alice"], False), (["oidc:alice", STEWARD], True), ([STEWARD], True)],
)
def test_a_standing_approval_naming_its_own_approver_is_refused(
    requesters: list[str], refused: bool
) -> None:
    request = {"operation": "CREATE", "userInfo": {"username": STEWARD, "groups": ["stewards"]}}
    messages = failures(policy("-approvals"), request, _standing(requesters))
    if refused:
        assert messages == [
            "a standing approval cannot cover your own Trains: remove your username from "
            "spec.standing.requesters"
        ]
    else:
        assert messages == []
