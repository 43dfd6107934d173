"""A good Train goes through every condition to Succeeded, against the emulated cluster."""

from __future__ import annotations

import base64
import re

import kubernetes_validate
from operator_harness import RUN_NS, STATION_NS, Harness, condition

from pht_contract import constants
from pht_contract.hashing import token_hash
from pht_contract.sparql import query_hash
from pht_sandbox.emulator import EVENTS, JOBS, NETWORK_POLICIES, SECRETS


async def test_good_train_succeeds_through_every_condition(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("km")
    body = await harness.wait_summary("km", "Queued")
    assert condition(body, "Admitted")["status"] == "True"
    assert condition(body, "Approved")["reason"] == "ApprovalNotRequired"
    assert constants.FINALIZER in body["metadata"]["finalizers"]
    run = body["status"]["run"]
    job = harness.cluster.get_object(JOBS, RUN_NS, run["jobName"])
    assert job is not None and job["metadata"]["uid"] == run["jobUid"]
    assert harness.cluster.get_object(SECRETS, RUN_NS, run["secretName"]) is not None
    uid = body["metadata"]["uid"]
    assert uid in harness.station.registrations
    # the objects the operator actually wrote validate against the upstream schema
    secret = harness.cluster.get_object(SECRETS, RUN_NS, run["secretName"])
    (netpol,) = harness.cluster.list_objects(
        NETWORK_POLICIES, RUN_NS, labels=f"{constants.LABEL_TRAIN_UID}={uid}"
    )
    for manifest in (job, secret, netpol):
        kubernetes_validate.validate(manifest, "1.33", strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["dnsPolicy"] == "None" and pod["automountServiceAccountToken"] is False
    assert job["spec"]["activeDeadlineSeconds"] == 600
    registration = harness.station.registrations[uid]
    assert registration.token_hash == token_hash(base64.b64decode(secret["data"]["token"]).decode())
    # The admission-recorded creator travels with the registration (the differencing ledger's key).
    assert registration.requested_by == "oidc:alice"
    # The approved texts travel too: the gateway runs these, never a train's own copy.
    declared = body["spec"]["queries"]
    assert declared
    assert [(q.name, q.sparql, q.hash) for q in registration.approved_queries] == [
        (q["name"], q["sparql"], query_hash(q["sparql"])) for q in declared
    ]
    assert {q.hash for q in registration.approved_queries} == set(
        registration.approved_query_hashes
    )
    # No command, args or input artifact override: a review of the image covers what runs.
    assert "command" not in body["spec"] and "args" not in body["spec"]
    assert registration.image_runs_as_built is True

    await harness.jobs.schedule(RUN_NS, run["jobName"])
    await harness.jobs.run(RUN_NS, run["jobName"])
    await harness.wait_summary("km", "Running")
    await harness.jobs.succeed(RUN_NS, run["jobName"])
    body = await harness.wait_summary("km", "Succeeded")
    assert condition(body, "Succeeded")["status"] == "True"
    assert condition(body, "ResultReleased")["status"] == "True"
    assert condition(body, "Running")["reason"] == "RunCompleted"
    assert body["status"]["result"]["digest"].startswith("sha256:")
    # after the outcome: token revoked, Secret and NetworkPolicy gone, TTL on the Job
    await harness.wait_for(lambda: uid in harness.station.deregistered)
    await harness.wait_for(
        lambda: harness.cluster.get_object(SECRETS, RUN_NS, run["secretName"]) is None
    )
    assert not harness.cluster.list_objects(
        NETWORK_POLICIES, RUN_NS, labels=f"{constants.LABEL_TRAIN_UID}={uid}"
    )
    await harness.wait_for(
        lambda: (
            (harness.cluster.get_object(JOBS, RUN_NS, run["jobName"]) or {})
            .get("spec", {})
            .get("ttlSecondsAfterFinished")
            == 600
        )
    )
    annotations = harness.train("km")["metadata"].get("annotations") or {}
    assert not [key for key in annotations if "kopf" in key]  # Kopf wrote nothing
    assert harness.cluster.get_object(NETWORK_POLICIES, RUN_NS, "pht-default-deny") is not None
    events = harness.events_for("km")
    order = [e["reason"] for e in events]
    story = ["Admitted", "JobCreated", "Running", "RunCompleted", "ResultReleased"]
    assert [reason for reason in order if reason in story] == story
    for posted in events:
        # events.k8s.io/v1: microsecond eventTime (sub-second order), who reported it and why
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", posted["eventTime"])
        assert posted["reportingController"] == f"{constants.API_GROUP}/operator"
        assert posted["reportingInstance"].startswith("pht-station-operator-")
        assert posted["regarding"]["uid"] == uid
    assert {"Admit", "CreateRun", "FollowRun", "Finish"} <= {e["action"] for e in events}
    # the same Events in the core view, which `kubectl describe train` lists
    described = [
        e["message"]
        for e in harness.cluster.list_objects(EVENTS, STATION_NS)
        if e["involvedObject"].get("name") == "km"
    ]
    assert "admitted by the station policy" in described


async def test_a_command_override_is_registered_as_not_the_image_as_built(
    harness: Harness,
) -> None:
    """The station API must know the run is not the reviewed image's own code."""
    await harness.apply_policy()
    await harness.create_train("km-cmd", command=["python", "-c", "print(1)"])
    body = await harness.wait_summary("km-cmd", "Queued")
    registration = harness.station.registrations[body["metadata"]["uid"]]
    assert registration.image_runs_as_built is False
