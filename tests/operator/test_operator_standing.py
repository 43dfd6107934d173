"""Consuming a standing approval re-checks the fresh object against the policy's caps.

Unit tests of one step with a test double of the Kubernetes API (``FreshApprovals``): the
verdict came from the watch cache, which concurrent Trains may have outdated.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

import pytest
from operator_harness import DIGEST, STATION_NS, policy_body, train_body

from pht_contract.policies import StationPolicySpec
from pht_operator.approving import consume_standing
from pht_operator.clusterview import ClusterView
from pht_operator.kube import KubeClient
from pht_operator.passes import Context, TrainPass, TransientError

Obj = dict[str, Any]


class FreshApprovals:
    """Test double of the Kubernetes API: serves one TrainApproval and records patches."""

    def __init__(self, approval: Obj) -> None:
        self.approval = approval
        self.patches: list[Obj] = []

    async def get(self, res: Any, namespace: str, name: str) -> Obj:
        return self.approval

    async def merge_patch(
        self, res: Any, namespace: str, name: str, patch: Obj, *, status: bool = False
    ) -> Obj:
        self.patches.append(patch)
        return {**self.approval, "status": patch["status"]}


def standing(max_runs: int, used: int, created: datetime.datetime) -> Obj:
    return {
        "metadata": {
            "name": "rounds",
            "namespace": STATION_NS,
            "resourceVersion": "7",
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": {
            "approver": "steward@x.nl",
            "standing": {"imageDigest": DIGEST, "queryHashes": [], "maxRuns": max_runs},
        },
        "status": {"runsUsed": used, "consumedBy": ["a"] * used},
    }


def step(approval: Obj) -> tuple[TrainPass, FreshApprovals]:
    kube = FreshApprovals(approval)
    body = train_body("km")
    body["metadata"].update(uid="u1", resourceVersion="1")
    ctx = Context(
        settings=cast(Any, None),
        kube=cast(KubeClient, kube),
        station=cast(Any, None),
        metrics=cast(Any, None),
        view=ClusterView(),
        events=lambda *args: None,
    )
    return TrainPass(ctx, body), kube


def policy(max_runs: int, max_days: int) -> StationPolicySpec:
    spec = policy_body(approval={"standing": {"maxRuns": max_runs, "maxDays": max_days}})["spec"]
    return StationPolicySpec.model_validate(spec)


NOW = datetime.datetime.now(datetime.UTC)


async def test_the_policy_max_runs_caps_a_larger_approval_on_the_fresh_object() -> None:
    pass_, kube = step(standing(max_runs=10, used=2, created=NOW))
    with pytest.raises(TransientError, match="no runs left"):
        await consume_standing(pass_, "rounds", policy(max_runs=2, max_days=30))
    assert kube.patches == []
    # the retry decides on the fresh object, not the stale cache
    assert pass_.ctx.view.approvals[STATION_NS]["rounds"]["status"]["runsUsed"] == 2


async def test_the_policy_max_days_counts_from_the_approval_creation() -> None:
    old = NOW - datetime.timedelta(days=8)
    pass_, kube = step(standing(max_runs=10, used=0, created=old))
    with pytest.raises(TransientError, match="expired"):
        await consume_standing(pass_, "rounds", policy(max_runs=10, max_days=7))
    assert kube.patches == []


async def test_within_the_caps_one_run_is_counted() -> None:
    pass_, kube = step(standing(max_runs=10, used=1, created=NOW))
    await consume_standing(pass_, "rounds", policy(max_runs=2, max_days=7))
    assert [p["status"]["runsUsed"] for p in kube.patches] == [2]
    assert kube.patches[0]["metadata"]["resourceVersion"] == "7"
