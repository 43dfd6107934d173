"""``pht pending`` / ``pht approve`` / ``pht reject`` against the emulated cluster."""

from __future__ import annotations

import asyncio
import contextlib
import io

from operator_harness import STATION_NS, Harness, condition

from pht_cli.main import main
from pht_sandbox.emulator import APPROVALS


async def pht(*argv: str) -> tuple[int, str]:
    out = io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out):
            return main(list(argv))

    code = await asyncio.to_thread(call)
    return code, out.getvalue()


async def test_pending_then_approve_starts_the_run(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    body = await harness.wait_summary("km", "AwaitingApproval")
    kubeconfig = str(harness.kubeconfig)
    code, out = await pht("pending", "--kubeconfig", kubeconfig, "-n", STATION_NS)
    assert code == 0
    assert "km" in out and body["status"]["specHash"][:12] in out
    code, out = await pht(
        "approve", "km", "--kubeconfig", kubeconfig, "-n", STATION_NS, "--approver", "steward@x.nl"
    )
    assert code == 0, out
    (approval,) = harness.cluster.list_objects(APPROVALS, STATION_NS)
    assert approval["spec"]["train"] == {
        "name": "km",
        "specHash": body["status"]["specHash"],
        "uid": body["metadata"]["uid"],
    }
    body = await harness.wait_summary("km", "Queued")
    assert body["status"]["approvedBy"] == ["steward@x.nl"]
    code, out = await pht("pending", "--kubeconfig", kubeconfig, "-n", STATION_NS)
    assert "no Train awaits approval" in out


async def test_reject_ends_the_train(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "TwoStewards"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    code, _ = await pht(
        "reject",
        "km",
        "--kubeconfig",
        str(harness.kubeconfig),
        "-n",
        STATION_NS,
        "--approver",
        "steward@x.nl",
        "--comment",
        "queries too broad",
    )
    assert code == 0
    body = await harness.wait_summary("km", "Rejected")
    assert "queries too broad" in condition(body, "Approved")["message"]


async def test_approving_an_unknown_train_fails_clearly(harness: Harness) -> None:
    code, _ = await pht(
        "approve", "nope", "--kubeconfig", str(harness.kubeconfig), "-n", STATION_NS
    )
    assert code == 1


async def test_reject_after_approve_by_the_same_steward_fails_and_says_why(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "TwoStewards"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    common = ("km", "--kubeconfig", str(harness.kubeconfig), "-n", STATION_NS)
    code, _ = await pht("approve", *common, "--approver", "steward@x.nl")
    assert code == 0
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, out = await pht("reject", *common, "--approver", "steward@x.nl")
    assert code == 1, out
    assert "already recorded Approve" in err.getvalue()
    assert "Reject was not recorded" in err.getvalue()
    (approval,) = harness.cluster.list_objects(APPROVALS, STATION_NS)
    assert approval["spec"]["decision"] == "Approve"
    code, out = await pht("approve", *common, "--approver", "steward@x.nl")
    assert code == 0 and "already recorded" in out
