"""Admission: every refusal is terminal with its reason; capacity waits instead."""

from __future__ import annotations

import asyncio

from operator_harness import DIGEST, RUN_NS, STATION_NS, Harness, condition

from pht_sandbox.emulator import JOBS, TRAINS


async def test_each_policy_violation_is_a_terminal_refusal_with_its_reason(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    cases = {
        "bad-image": ({"image": f"docker.io/evil/miner:1@{DIGEST}"}, "ImageNotAllowed", "registry"),
        "no-digest": (
            {"image": "ghcr.io/pht-station/trains/kaplan-meier:0.1.0"},
            "DigestRequired",
            "spec.image",
        ),
        "many-gpus": ({"resources": {"gpu": 3}}, "ExceedsGpuLimit", "maxGpus of 2"),
        "stranger": (
            {"requester": {"organisation": "acme"}},
            "UnknownOrganisation",
            "spec.requester.organisation",
        ),
        "too-long": ({"timeoutSeconds": 86400}, "TimeoutTooLong", "maximum of 43200s"),
    }
    for name, (spec, _, _) in cases.items():
        await harness.create_train(name, **spec)
    for name, (_, reason, fragment) in cases.items():
        body = await harness.wait_summary(name, "Rejected")
        admitted = condition(body, "Admitted")
        assert admitted is not None
        assert (admitted["status"], admitted["reason"]) == ("False", reason), name
        assert fragment in admitted["message"], admitted["message"]
        assert "run" not in body["status"]
        await harness.wait_for(
            lambda n=name, r=reason: any(
                e["type"] == "Warning" and e["reason"] == r for e in harness.events_for(n)
            ),
            what=f"a Warning event for {name}",
        )
    assert harness.cluster.list_objects(JOBS, RUN_NS) == []
    assert harness.station.registrations == {}


async def test_a_namespace_without_policy_refuses_no_station_policy(harness: Harness) -> None:
    await harness.create_train("orphan")
    body = await harness.wait_summary("orphan", "Rejected")
    assert condition(body, "Admitted")["reason"] == "NoStationPolicy"


async def test_trains_outside_the_station_namespaces_are_ignored(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("elsewhere", namespace="default")
    await harness.create_train("here")
    await harness.wait_summary("here", "Queued")
    body = harness.cluster.get_object(TRAINS, "default", "elsewhere")
    assert body is not None and "status" not in body
    assert not body["metadata"].get("finalizers")


async def test_concurrency_limit_waits_and_admits_when_a_slot_frees(harness: Harness) -> None:
    await harness.apply_policy(limits={"maxConcurrentTrains": 1})
    await harness.create_train("first")
    await harness.wait_summary("first", "Queued")
    await harness.create_train("second")
    body = await harness.wait_summary("second", "Waiting")
    admitted = condition(body, "Admitted")
    assert (admitted["status"], admitted["reason"]) == ("False", "ConcurrencyLimitReached")
    assert "maxConcurrentTrains" in admitted["message"]
    job = harness.job_name("first")
    await harness.jobs.schedule(RUN_NS, job)
    await harness.jobs.run(RUN_NS, job)
    await harness.jobs.succeed(RUN_NS, job)
    await harness.wait_summary("first", "Succeeded")
    body = await harness.wait_summary("second", "Queued")
    assert condition(body, "Admitted")["status"] == "True"
    assert len(harness.cluster.list_objects(JOBS, RUN_NS)) == 2
    assert STATION_NS in body["metadata"]["namespace"]


async def test_waiting_trains_are_admitted_first_come_first_served(harness: Harness) -> None:
    await harness.apply_policy(limits={"maxConcurrentTrains": 1})
    await harness.create_train("running")
    await harness.wait_summary("running", "Queued")
    await harness.create_train("b-older")
    await harness.wait_summary("b-older", "Waiting")
    await asyncio.sleep(1.1)  # creationTimestamp has one-second resolution
    await harness.create_train("a-newer")
    await harness.wait_summary("a-newer", "Waiting")
    job = harness.job_name("running")
    await harness.jobs.run(RUN_NS, job)
    await harness.jobs.succeed(RUN_NS, job)
    await harness.wait_summary("b-older", "Queued")
    await asyncio.sleep(harness.settings.poll_interval_seconds * 3)
    assert harness.summary("a-newer") == "Waiting"


async def test_resuming_a_suspended_train_waits_for_a_free_slot(harness: Harness) -> None:
    await harness.apply_policy(limits={"maxConcurrentTrains": 1})
    await harness.create_train("paused", suspend=True)
    await harness.wait_summary("paused", "Suspended")
    await harness.create_train("busy")
    await harness.wait_summary("busy", "Queued")
    await harness.cluster.patch_object(TRAINS, STATION_NS, "paused", {"spec": {"suspend": False}})
    body = await harness.wait_summary("paused", "Waiting")
    admitted = condition(body, "Admitted")
    assert (admitted["status"], admitted["reason"]) == ("False", "ConcurrencyLimitReached")
    await asyncio.sleep(harness.settings.poll_interval_seconds * 2)
    assert harness.summary("paused") == "Waiting"
    assert len(harness.cluster.list_objects(JOBS, RUN_NS)) == 1
    job = harness.job_name("busy")
    await harness.jobs.run(RUN_NS, job)
    await harness.jobs.succeed(RUN_NS, job)
    await harness.wait_summary("busy", "Succeeded")
    body = await harness.wait_summary("paused", "Queued")
    assert condition(body, "Admitted")["status"] == "True"
    assert condition(body, "Approved")["status"] == "True"


async def test_schema_errors_name_their_field_and_parameters_get_their_own_reason(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    await harness.create_train("bad-timeout", timeoutSeconds=0)
    await harness.create_train("bad-params", parameters="[1, 2]")
    body = await harness.wait_summary("bad-timeout", "Rejected")
    admitted = condition(body, "Admitted")
    assert admitted["reason"] == "InvalidSpec"
    assert admitted["message"].startswith("spec.timeoutSeconds")
    body = await harness.wait_summary("bad-params", "Rejected")
    assert condition(body, "Admitted")["reason"] == "InvalidParameters"
