"""Approval: bound to the spec hash, distinct stewards, never the requester, standing runs."""

from __future__ import annotations

import asyncio
import datetime

from operator_harness import (
    DIGEST,
    REQUESTED_BY,
    RUN_NS,
    STATION_NS,
    Harness,
    condition,
    train_body,
)

from pht_contract.hashing import spec_hash
from pht_contract.sparql import query_hash
from pht_contract.trains import TrainSpec
from pht_sandbox.emulator import APPROVALS, JOBS, TRAINS


async def test_one_steward_approval_starts_the_run_but_self_approval_does_not(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    body = await harness.wait_summary("km", "AwaitingApproval")
    assert condition(body, "Approved")["reason"] == "AwaitingApproval"
    assert body["status"]["specHash"] in condition(body, "Approved")["message"]
    await harness.approve("km", "researcher@maastro.example")  # the requester's contact
    await harness.wait_for(
        lambda: (
            "requester cannot approve"
            in (condition(harness.train("km"), "Approved") or {}).get("message", "")
        ),
        what="self-approval to be ignored",
    )
    assert harness.summary("km") == "AwaitingApproval"
    await harness.approve("km", "steward@maastro.example")
    body = await harness.wait_summary("km", "Queued")
    assert condition(body, "Approved")["reason"] == "Approved"
    assert body["status"]["approvedBy"] == ["steward@maastro.example"]


async def test_two_steward_mode_needs_two_distinct_approvers(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "TwoStewards"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.approve("km", "steward@maastro.example")
    body = harness.train("km")
    await harness.cluster.create_object(
        APPROVALS,
        {
            "metadata": {"name": "km-again", "namespace": STATION_NS},
            "spec": {
                "train": {"name": "km", "specHash": body["status"]["specHash"]},
                "approver": "steward@maastro.example",
            },
        },
    )
    await harness.wait_for(
        lambda: (
            "approvers must differ"
            in (condition(harness.train("km"), "Approved") or {}).get("message", "")
        ),
        what="the duplicate approver to be ignored",
    )
    assert harness.summary("km") == "AwaitingApproval"
    await harness.approve("km", "second@maastro.example")
    body = await harness.wait_summary("km", "Queued")
    assert sorted(body["status"]["approvedBy"]) == [
        "second@maastro.example",
        "steward@maastro.example",
    ]


async def test_an_approval_for_another_spec_hash_does_not_count(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.cluster.create_object(
        APPROVALS,
        {
            "metadata": {"name": "stale", "namespace": STATION_NS},
            "spec": {
                "train": {"name": "km", "specHash": "0" * 64},
                "approver": "steward@maastro.example",
            },
        },
    )
    await harness.approve("km", "other@maastro.example", decision="Reject")
    body = await harness.wait_summary("km", "Rejected")
    assert condition(body, "Approved")["reason"] == "Rejected"


async def test_a_standing_approval_covers_a_limited_number_of_runs(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    sparql = train_body("x")["spec"]["queries"][0]["sparql"]
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    await harness.cluster.create_object(
        APPROVALS,
        {
            "metadata": {"name": "rounds", "namespace": STATION_NS},
            "spec": {
                "standing": {
                    "imageDigest": DIGEST,
                    "queryHashes": [query_hash(sparql)],
                    "requesters": [REQUESTED_BY],
                    "parameters": [
                        {"name": "timePoints", "type": "array", "items": "integer"},
                        {"name": "groupBy", "type": "string", "enum": ["overallStage"]},
                    ],
                    "maxRuns": 1,
                    "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "approver": "steward@maastro.example",
            },
        },
    )
    await harness.create_train("round-1")
    body = await harness.wait_summary("round-1", "Queued")
    assert condition(body, "Approved")["reason"] == "StandingApproval"
    approval = harness.cluster.get_object(APPROVALS, STATION_NS, "rounds")
    assert approval is not None
    assert approval["status"]["runsUsed"] == 1
    assert approval["status"]["consumedBy"] == [body["metadata"]["uid"]]
    await harness.create_train("round-2")
    body = await harness.wait_summary("round-2", "AwaitingApproval")
    assert "no runs left" in condition(body, "Approved")["message"]


async def test_a_spec_edited_after_approval_never_runs(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km", suspend=True)
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.approve("km", "steward@maastro.example")
    body = await harness.wait_summary("km", "Suspended")
    approved_hash = body["status"]["specHash"]
    # The CRD forbids this edit; a cluster without the CRD's rules (or a bug) must not run it.
    await harness.cluster.patch_object(
        TRAINS, STATION_NS, "km", {"spec": {"parameters": '{"exfiltrate": true}', "suspend": False}}
    )
    body = await harness.wait_summary("km", "Failed")
    failed = condition(body, "Failed")
    assert failed["reason"] == "SpecChangedAfterApproval"
    assert approved_hash in failed["message"]
    current = spec_hash(TrainSpec.model_validate(body["spec"]))
    assert current != approved_hash and current in failed["message"]
    assert harness.cluster.list_objects(JOBS, RUN_NS) == []
    assert harness.station.registration_puts == 0


async def test_without_the_requested_by_annotation_no_approval_counts(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("anon", requested_by=None)
    await harness.wait_summary("anon", "AwaitingApproval")
    await harness.approve("anon", "steward@maastro.example")
    await harness.wait_for(
        lambda: (
            "no pht.health-ai.nl/requested-by annotation"
            in (condition(harness.train("anon"), "Approved") or {}).get("message", "")
        ),
        what="the approval to be refused for lack of a known requester",
    )
    await asyncio.sleep(0.7)  # two poll intervals: still not approved
    body = harness.train("anon")
    assert body["status"]["summary"] == "AwaitingApproval"
    assert condition(body, "Approved")["reason"] == "AwaitingApproval"
    assert "admission policy" in condition(body, "Approved")["message"]
    assert harness.cluster.list_objects(JOBS, RUN_NS) == []


async def test_the_annotated_requester_cannot_approve_under_another_name(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    # spec.requester names someone else; the authenticated creator is REQUESTED_BY.
    await harness.approve("km", REQUESTED_BY.upper())
    await harness.wait_for(
        lambda: (
            "requester cannot approve"
            in (condition(harness.train("km"), "Approved") or {}).get("message", "")
        ),
        what="the creator's approval to be ignored",
    )
    assert harness.summary("km") == "AwaitingApproval"
    await harness.approve("km", "steward@maastro.example")
    await harness.wait_summary("km", "Queued")
