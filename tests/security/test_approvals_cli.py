"""``pht approve`` never records an approval the policy or the admitted spec would not allow.

The steward approves what ``pht pending`` shows; if the Train was edited since admission or
the policy now refuses it, the CLI says why and writes no TrainApproval (the operator would
refuse it anyway, see test_approvals_binding.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import io

from security_approvals_kit import APPROVALS, STATION_NS, Harness, harness_fixture

from pht_cli.main import main
from pht_sandbox.emulator import TRAINS

harness = harness_fixture

EVIL_IMAGE = "evil.example.org/steal/km:1@sha256:" + "9" * 64


async def approve(harness: Harness, train: str) -> tuple[int, str]:
    err = io.StringIO()
    argv = ["approve", train, "--kubeconfig", str(harness.kubeconfig), "-n", STATION_NS]

    def call() -> int:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return main([*argv, "--approver", "steward@maastro.example"])

    return await asyncio.to_thread(call), err.getvalue()


async def test_approve_refuses_a_train_edited_after_admission(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"}, images={"requireDigest": True})
    await harness.create_train("km", suspend=True)
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.cluster.patch_object(TRAINS, STATION_NS, "km", {"spec": {"image": EVIL_IMAGE}})
    code, err = await approve(harness, "km")
    assert code == 1
    assert "changed after admission" in err and "no approval was recorded" in err
    assert harness.cluster.list_objects(APPROVALS, STATION_NS) == []


async def test_approve_refuses_a_train_the_current_policy_refuses(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.apply_policy(
        approval={"mode": "OneSteward"}, images={"allowedRegistries": ["registry.example.org"]}
    )
    code, err = await approve(harness, "km")
    assert code == 1
    assert "[ImageNotAllowed]" in err
    assert harness.cluster.list_objects(APPROVALS, STATION_NS) == []
