"""What the operator tells the provenance chain, and with which call.

The admission and approval records ride in the run's registration; the run's facts (its Job,
when it was created, attempts, outcome) in the completion call; the station records the
registration and the token's revocation itself. A run that ends without a completion call
(lost, cancelled, deleted) gets its record posted. Whatever call brings a record, it reaches
the chain before the status that reports its step.
"""

from __future__ import annotations

from operator_harness import RUN_NS, Harness, condition

from pht_contract import wire
from pht_sandbox.emulator import JOBS, TRAINS


def kinds(harness: Harness, uid: str) -> dict[str, wire.ProvenanceEvent]:
    return {
        event.event_id.split(":", 1)[1]: event
        for event in harness.station.provenance.values()
        if event.train_uid == uid
    }


async def test_a_successful_run_costs_no_provenance_call_of_its_own(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("km")
    body = await harness.wait_summary("km", "Queued")
    uid = body["metadata"]["uid"]
    registration = harness.station.registrations[uid]
    [admission] = registration.provenance
    assert admission.event_id == f"{uid}:admission:decision"
    assert admission.kind == wire.ProvenanceKind.ADMISSION
    assert admission.details["outcome"] == "Admitted"
    assert (admission.namespace, admission.name) == (body["metadata"]["namespace"], "km")
    job = harness.job_name("km")
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("km", "Running")
    await harness.jobs.succeed(RUN_NS, job)
    body = await harness.wait_summary("km", "Succeeded")
    await harness.wait_for(lambda: uid in harness.station.deregistered)
    completion = harness.station.completions[uid]
    assert completion.job_succeeded is True
    assert completion.job_uid == body["status"]["run"]["jobUid"]
    assert (
        completion.job_created_at
        == harness.cluster.get_object(JOBS, RUN_NS, job)["metadata"]["creationTimestamp"]
    )
    assert completion.attempts == 1
    assert harness.station.provenance_posts == []


async def test_an_approval_rides_in_the_registration_after_the_admission(
    harness: Harness,
) -> None:
    await harness.apply_policy(approval={"mode": "OneSteward"})
    await harness.create_train("km")
    body = await harness.wait_summary("km", "AwaitingApproval")
    uid = body["metadata"]["uid"]
    # Admitted is in the status: its record was posted first, there being no registration yet.
    assert harness.station.provenance_posts == [f"{uid}:admission:decision"]
    await harness.approve("km", "steward@maastro.example")
    await harness.wait_summary("km", "Queued")
    [approval] = harness.station.registrations[uid].provenance
    assert approval.event_id == f"{uid}:approval:decision"
    assert approval.details["outcome"] == "Approved"
    assert approval.details["approvers"] == "steward@maastro.example"
    assert len(harness.station.provenance_posts) == 1


async def test_records_the_registration_did_not_carry_are_posted_before_the_status(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    harness.station.refuse_registrations = True
    await harness.create_train("patient")
    await harness.wait_for(
        lambda: (
            (condition(harness.train("patient"), "Running") or {}).get("reason")
            == "RegistrationFailed"
        ),
        what="RegistrationFailed",
    )
    uid = harness.train("patient")["metadata"]["uid"]
    assert condition(harness.train("patient"), "Admitted")["status"] == "True"
    assert harness.station.provenance_posts == [f"{uid}:admission:decision"]
    harness.station.refuse_registrations = False
    await harness.wait_summary("patient", "Queued", timeout=20)
    assert harness.station.registrations[uid].provenance == []  # nothing is sent twice


async def test_a_lost_run_gets_its_record_posted(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("lost")
    body = await harness.wait_summary("lost", "Queued")
    uid, job_uid = body["metadata"]["uid"], body["status"]["run"]["jobUid"]
    await harness.cluster.delete_object(JOBS, RUN_NS, harness.job_name("lost"))
    await harness.wait_summary("lost", "Failed")
    run = kinds(harness, uid)["run:ended"]
    assert run.details == {"jobUid": job_uid, "jobSucceeded": False, "reason": "RunLost"}
    assert uid not in harness.station.completions


async def test_a_deleted_running_train_gets_its_run_record_posted(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("gone")
    body = await harness.wait_summary("gone", "Queued")
    uid, job_uid = body["metadata"]["uid"], body["status"]["run"]["jobUid"]
    await harness.jobs.run(RUN_NS, harness.job_name("gone"))
    await harness.wait_summary("gone", "Running")
    await harness.cluster.delete_object(TRAINS, body["metadata"]["namespace"], "gone")
    await harness.wait_for(lambda: "run:ended" in kinds(harness, uid), what="the run's record")
    recorded = kinds(harness, uid)
    assert recorded["run:ended"].details["jobUid"] == job_uid
    assert recorded["run:ended"].details["reason"] == "Cancelled"
    assert "deregistration:deleted" in recorded
