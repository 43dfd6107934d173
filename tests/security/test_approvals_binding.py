"""The requester as attacker: make an approval cover more than the steward and policy allow.

Each test plays the attack against the real operator and asserts the observable outcome: the
Train ends (or waits) with a specific reason, and no Job and no station-API registration exist.
"""

from __future__ import annotations

import asyncio

from security_approvals_kit import (
    APPROVALS,
    JOBS,
    RUN_NS,
    STATION_NS,
    Harness,
    condition,
    harness_fixture,
    km_standing,
    no_run_started,
)

from pht_contract.hashing import spec_hash
from pht_contract.trains import TrainSpec
from pht_sandbox.emulator import TRAINS

harness = harness_fixture

EVIL_IMAGE = "evil.example.org/steal/km:1@sha256:" + "9" * 64


async def approve_hash(harness: Harness, train: str, approver: str, hash_: str) -> None:
    await harness.cluster.create_object(
        APPROVALS,
        {
            "metadata": {"name": f"{train}-{approver.split('@')[0]}", "namespace": STATION_NS},
            "spec": {"train": {"name": train, "specHash": hash_}, "approver": approver},
        },
    )


async def test_an_image_swapped_after_admission_never_runs_even_if_its_new_hash_is_approved(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    admitted = (await harness.wait_summary("km", "AwaitingApproval"))["status"]["specHash"]
    # The attacker edits the image to a registry the policy refuses (a cluster without the
    # CRD's immutability rule lets this through) and gets the *new* hash approved.
    await harness.cluster.patch_object(TRAINS, STATION_NS, "km", {"spec": {"image": EVIL_IMAGE}})
    edited = TrainSpec.model_validate(harness.train("km")["spec"])
    assert spec_hash(edited) != admitted
    await approve_hash(harness, "km", "steward@maastro.example", spec_hash(edited))
    body = await harness.wait_summary("km", "Failed")
    assert condition(body, "Failed")["reason"] == "SpecChangedAfterAdmission"
    assert body["status"]["specHash"] == admitted  # the edited hash was never recorded
    assert "approvedBy" not in body["status"]
    assert (condition(body, "Approved") or {}).get("status") != "True"
    await asyncio.sleep(0.5)
    assert no_run_started(harness)


async def test_a_policy_tightened_before_approval_refuses_instead_of_recording_it(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    admitted = (await harness.wait_summary("km", "AwaitingApproval"))["status"]["specHash"]
    await harness.apply_policy(
        approval={"mode": "OneSteward"}, images={"allowedRegistries": ["registry.example.org"]}
    )
    await approve_hash(harness, "km", "steward@maastro.example", admitted)
    body = await harness.wait_summary("km", "Rejected")
    approved = condition(body, "Approved")
    assert approved is not None and approved["status"] == "False"
    assert approved["reason"] == "ImageNotAllowed"
    assert "approvedBy" not in body["status"]
    await asyncio.sleep(0.5)
    assert no_run_started(harness)


async def test_a_policy_tightened_after_approval_stops_the_run_start(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km", suspend=True)
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.approve("km", "steward@maastro.example")
    await harness.wait_summary("km", "Suspended")
    await harness.apply_policy(
        approval={"mode": "OneSteward"}, images={"allowedRegistries": ["registry.example.org"]}
    )
    await harness.cluster.patch_object(TRAINS, STATION_NS, "km", {"spec": {"suspend": False}})
    body = await harness.wait_summary("km", "Failed")
    assert condition(body, "Failed")["reason"] == "ImageNotAllowed"
    assert no_run_started(harness)


async def test_zero_resources_are_refused_not_turned_into_no_limit(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train(
        "greedy", resources={"cpu": "0", "memory": "0", "ephemeralStorage": "0"}
    )
    body = await harness.wait_summary("greedy", "Rejected")
    admitted = condition(body, "Admitted")
    assert admitted is not None and admitted["reason"] == "InvalidResources"
    assert "spec.resources.cpu" in admitted["message"]
    assert "no limit" in admitted["message"]
    assert no_run_started(harness)


async def test_every_job_gets_positive_limits(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("small", resources={"cpu": "250m", "memory": "512Mi"})
    await harness.wait_for(lambda: harness.cluster.list_objects(JOBS, RUN_NS), what="a Job")
    (job,) = harness.cluster.list_objects(JOBS, RUN_NS)
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"}


async def test_another_researchers_train_is_not_covered_by_a_standing_approval(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.cluster.create_object(APPROVALS, km_standing())
    await harness.create_train("mallory-round", requested_by="oidc:mallory")
    body = await harness.wait_summary("mallory-round", "AwaitingApproval")
    assert condition(body, "Approved")["reason"] == "AwaitingApproval"
    await asyncio.sleep(0.5)
    assert harness.summary("mallory-round") == "AwaitingApproval"
    assert no_run_started(harness)
    approval = harness.cluster.get_object(APPROVALS, STATION_NS, "rounds")
    assert approval is not None and not (approval.get("status") or {}).get("runsUsed")


async def test_a_command_override_is_not_covered_by_a_standing_approval(harness: Harness) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.cluster.create_object(APPROVALS, km_standing())
    await harness.create_train("shell", command=["/bin/sh", "-c", "cat /data/*"])
    await harness.wait_summary("shell", "AwaitingApproval")
    await asyncio.sleep(0.5)
    assert harness.summary("shell") == "AwaitingApproval"
    assert no_run_started(harness)


async def test_parameters_outside_the_standing_bounds_wait_with_a_specific_reason(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.cluster.create_object(APPROVALS, km_standing())
    await harness.create_train("narrow", parameters='{"timePoints": [1], "groupBy": "patientId"}')
    body = await harness.wait_summary("narrow", "AwaitingApproval")
    approved = condition(body, "Approved")
    assert approved is not None and approved["reason"] == "ParametersOutsideApproval"
    assert "groupBy" in approved["message"] and "patientId" not in approved["message"]
    await asyncio.sleep(0.5)
    assert no_run_started(harness)


async def test_a_standing_approval_is_one_steward_under_a_two_steward_policy(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "TwoStewards"})
    await harness.cluster.create_object(APPROVALS, km_standing())
    await harness.create_train("round-1")
    body = await harness.wait_summary("round-1", "AwaitingApproval")
    assert "counts as one approver" in condition(body, "Approved")["message"]
    # The standing approval's own steward approving again adds nothing.
    await harness.approve("round-1", "steward@maastro.example")
    await asyncio.sleep(0.7)
    assert harness.summary("round-1") == "AwaitingApproval"
    assert no_run_started(harness)
    # A second, different steward approving the Train itself completes the two.
    await harness.create_train("round-2")
    await harness.wait_summary("round-2", "AwaitingApproval")
    await harness.approve("round-2", "second@maastro.example")
    body = await harness.wait_summary("round-2", "Queued")
    assert condition(body, "Approved")["reason"] == "StandingApproval"
    assert body["status"]["approvedBy"] == ["second@maastro.example"]
    assert harness.summary("round-1") == "AwaitingApproval"


def test_a_job_never_carries_a_zero_limit_even_if_one_slipped_past_admission() -> None:
    from operator_harness import operator_settings, policy_body, train_body

    from pht_contract.policies import StationPolicySpec
    from pht_operator import runobjects
    from pht_operator.names import run_names

    policy = StationPolicySpec.model_validate(policy_body(limits={"maxMemory": "1Gi"})["spec"])
    spec = TrainSpec.model_validate(
        train_body("km", resources={"cpu": "0", "memory": "0Mi", "ephemeralStorage": "0.0"})["spec"]
    )
    request = runobjects.RunRequest(
        uid="u1",
        namespace=STATION_NS,
        name="km",
        spec=spec,
        spec_hash=spec_hash(spec),
        policy=policy,
        timeout_seconds=60,
        names=run_names("u1", "km"),
    )
    job = runobjects.build_job(request, operator_settings("http://127.0.0.1:1"))
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    # The Train's defaults, capped by the policy (memory default 2Gi > maxMemory 1Gi).
    expected = {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}
    assert resources["limits"] == expected
    assert resources["requests"] == expected


async def test_a_recreated_train_does_not_replay_the_approval_of_its_namesake(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    await harness.wait_summary("km", "AwaitingApproval")
    await harness.approve("km", "steward@maastro.example")  # by hand: no uid, a timestamp
    await harness.wait_summary("km", "Queued")
    await harness.cluster.delete_object(TRAINS, STATION_NS, "km")
    await harness.wait_for(lambda: harness.summary("km") is None, what="the Train to be gone")
    await asyncio.sleep(1.1)  # the API server's timestamps have a resolution of one second
    await harness.create_train("km")  # the very same spec, so the very same spec hash
    body = await harness.wait_summary("km", "AwaitingApproval")
    assert "made for an earlier Train of this name" in condition(body, "Approved")["message"]
    await asyncio.sleep(0.5)
    body = harness.train("km")
    assert body["status"]["summary"] == "AwaitingApproval"
    assert "run" not in body["status"]
    assert body["metadata"]["uid"] not in harness.station.registrations


def test_an_approval_bound_to_another_uid_does_not_count() -> None:
    import datetime

    from operator_harness import train_body

    from pht_operator import approvals

    spec = TrainSpec.model_validate(train_body("km")["spec"])

    def verdict(uid: str | None, created: str) -> approvals.ApprovalVerdict:
        ref = {"name": "km", "specHash": spec_hash(spec), **({"uid": uid} if uid else {})}
        return approvals.decide(
            train_name="km",
            train_uid="new-uid",
            spec=spec,
            spec_hash=spec_hash(spec),
            query_hashes=(),
            required=1,
            requester=approvals.requester_identities(spec, {}),
            approvals=[
                {
                    "apiVersion": "pht.health-ai.nl/v1alpha1",
                    "kind": "TrainApproval",
                    "metadata": {"name": "a", "creationTimestamp": created},
                    "spec": {"train": ref, "approver": "steward@maastro.example"},
                }
            ],
            train_created=datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC),
        )

    assert verdict("new-uid", "2026-11-29T11:00:00Z").approved  # the uid decides
    assert not verdict("old-uid", "2026-11-29T13:00:00Z").approved
    assert not verdict(None, "2026-11-29T11:59:59Z").approved  # before this Train existed
    assert verdict(None, "2026-11-29T12:00:00Z").approved
