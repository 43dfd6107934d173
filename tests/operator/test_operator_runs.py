"""Following runs: each way a run can go wrong ends in its own condition and reason."""

from __future__ import annotations

import asyncio

from operator_harness import RUN_NS, STATION_NS, Harness, condition
from stationapi_double import Plan

from pht_contract.trains import ProgressStage, ReleaseState
from pht_operator.names import RunNames, run_labels, run_names
from pht_sandbox.emulator import JOBS, NETWORK_POLICIES, PODS, SECRETS, TRAINS


async def start(harness: Harness, name: str, **spec: object) -> str:
    await harness.create_train(name, **spec)
    await harness.wait_summary(name, "Queued")
    return harness.job_name(name)


async def test_image_pull_failure_fails_fast_and_removes_the_job(harness: Harness) -> None:
    await harness.apply_policy()
    job = await start(harness, "pull")
    await harness.jobs.image_pull_error(RUN_NS, job, "ImagePullBackOff")
    body = await harness.wait_summary("pull", "Failed")
    assert condition(body, "Failed")["reason"] == "ImagePullFailed"
    assert "ImagePullBackOff" in condition(body, "Failed")["message"]
    await harness.wait_for(lambda: harness.cluster.get_object(JOBS, RUN_NS, job) is None)
    uid = body["metadata"]["uid"]
    assert harness.station.completions[uid].job_succeeded is False


async def test_unschedulable_waits_for_the_pending_timeout_then_fails(harness: Harness) -> None:
    await harness.apply_policy(timeouts={"pendingSeconds": 2})
    job = await start(harness, "nogpu")
    await harness.jobs.unschedulable(RUN_NS, job)
    await harness.wait_for(
        lambda: (condition(harness.train("nogpu"), "Running") or {}).get("reason") == "Pending"
    )
    assert harness.summary("nogpu") == "Queued"
    body = await harness.wait_summary("nogpu", "Failed", timeout=10)
    assert condition(body, "Failed")["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in condition(body, "Failed")["message"]


async def test_a_queue_holding_the_job_suspended_stops_the_pending_timer(harness: Harness) -> None:
    await harness.apply_policy(
        timeouts={"pendingSeconds": 1}, scheduling={"kueueQueue": "gpu-queue"}
    )
    job = await start(harness, "queued")
    created = harness.cluster.get_object(JOBS, RUN_NS, job)
    assert created["spec"]["suspend"] is True
    assert created["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    await harness.jobs.hold(RUN_NS, job)
    await harness.wait_for(
        lambda: (condition(harness.train("queued"), "Running") or {}).get("reason") == "Queued"
    )
    await asyncio.sleep(1.5)  # longer than pendingSeconds: still waiting, not Unschedulable
    assert harness.summary("queued") == "Queued"


async def test_deadline_and_backoff_failures_carry_their_reasons(harness: Harness) -> None:
    await harness.apply_policy()
    late = await start(harness, "late")
    flaky = await start(harness, "flaky", retries=2)
    await harness.jobs.run(RUN_NS, late)
    await harness.jobs.fail(RUN_NS, late, "DeadlineExceeded")
    await harness.jobs.run(RUN_NS, flaky)
    await harness.jobs.fail(RUN_NS, flaky, "BackoffLimitExceeded")
    body = await harness.wait_summary("late", "Failed")
    assert condition(body, "Failed")["reason"] == "DeadlineExceeded"
    assert "600s" in condition(body, "Failed")["message"]
    body = await harness.wait_summary("flaky", "Failed")
    assert condition(body, "Failed")["reason"] == "BackoffLimitExceeded"
    assert body["status"]["attempts"] == 3


async def test_a_vanished_job_is_run_lost_and_never_recreated(harness: Harness) -> None:
    await harness.apply_policy()
    job = await start(harness, "lost")
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("lost", "Running")
    await harness.cluster.delete_object(JOBS, RUN_NS, job)
    body = await harness.wait_summary("lost", "Failed")
    assert condition(body, "Failed")["reason"] == "RunLost"
    await asyncio.sleep(1.0)  # several resync periods
    assert harness.cluster.get_object(JOBS, RUN_NS, job) is None


async def test_progress_is_mirrored_and_a_held_result_waits_for_release(harness: Harness) -> None:
    await harness.apply_policy()
    harness.station.plan_for = lambda registration: Plan(
        uploads=1, release=ReleaseState.HELD, rule="ModelNeedsReview"
    )
    job = await start(harness, "model")
    uid = harness.train("model")["metadata"]["uid"]
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("model", "Running")
    harness.station.report_progress(uid, 40, ProgressStage.TRAINING)
    await harness.wait_for(
        lambda: harness.train("model")["status"].get("progress", {}).get("percent") == 40
    )
    await harness.jobs.succeed(RUN_NS, job)
    body = await harness.wait_summary("model", "AwaitingRelease")
    released = condition(body, "ResultReleased")
    assert (released["status"], released["reason"]) == ("False", "AwaitingRelease")
    assert "ModelNeedsReview" in released["message"]
    succeeded = condition(body, "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("Unknown", "AwaitingRelease")
    harness.station.decide(uid, ReleaseState.RELEASED)
    body = await harness.wait_summary("model", "Succeeded")
    assert condition(body, "ResultReleased")["status"] == "True"


async def test_blocked_and_missing_results_fail_with_their_reasons(harness: Harness) -> None:
    await harness.apply_policy()
    plans = {
        "blocked": Plan(uploads=1, release=ReleaseState.BLOCKED, rule="MinCellCount"),
        "silent": Plan(uploads=0),
    }
    harness.station.plan_for = lambda registration: plans[registration.name]
    for name in plans:
        job = await start(harness, name)
        await harness.jobs.run(RUN_NS, job)
        await harness.jobs.succeed(RUN_NS, job)
    body = await harness.wait_summary("blocked", "Failed")
    assert condition(body, "Failed")["reason"] == "DisclosureBlocked"
    assert "MinCellCount" in condition(body, "Failed")["message"]
    body = await harness.wait_summary("silent", "Failed")
    assert condition(body, "Failed")["reason"] == "NoOutput"


async def test_deleting_a_running_train_revokes_the_token_and_stops_the_run(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    job = await start(harness, "gone")
    body = harness.train("gone")
    uid, secret = body["metadata"]["uid"], body["status"]["run"]["secretName"]
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("gone", "Running")
    pods = harness.jobs.pods(RUN_NS, job)
    assert pods
    await harness.cluster.delete_object(TRAINS, STATION_NS, "gone")
    await harness.wait_for(lambda: harness.cluster.get_object(TRAINS, STATION_NS, "gone") is None)
    assert uid in harness.station.deregistered
    assert harness.cluster.get_object(JOBS, RUN_NS, job) is None
    assert harness.jobs.pods(RUN_NS, job) == []  # background propagation removed the pods
    assert harness.cluster.get_object(SECRETS, RUN_NS, secret) is None


async def test_suspend_before_the_run_waits_and_suspend_during_it_cancels(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    await harness.create_train("later", suspend=True)
    body = await harness.wait_summary("later", "Suspended")
    assert condition(body, "Running")["reason"] == "Suspended"
    assert harness.cluster.list_objects(JOBS, RUN_NS) == []
    await harness.cluster.patch_object(TRAINS, STATION_NS, "later", {"spec": {"suspend": False}})
    await harness.wait_summary("later", "Queued")
    job = harness.job_name("later")
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("later", "Running")
    await harness.cluster.patch_object(TRAINS, STATION_NS, "later", {"spec": {"suspend": True}})
    body = await harness.wait_summary("later", "Failed")
    assert condition(body, "Failed")["reason"] == "Cancelled"
    assert harness.cluster.get_object(JOBS, RUN_NS, job) is None
    assert body["metadata"]["uid"] in harness.station.deregistered


async def leave_unrecorded_run(harness: Harness, name: str) -> RunNames:
    """The run objects a pass creates before it dies without recording the Job's uid."""
    uid = harness.train(name)["metadata"]["uid"]
    names = run_names(uid, name)
    labels = run_labels(uid, STATION_NS, name)

    def meta(object_name: str) -> dict[str, object]:
        return {"name": object_name, "namespace": RUN_NS, "labels": labels}

    await harness.cluster.create_object(
        SECRETS, {"metadata": meta(names.secret), "data": {"token": "dG9rZW4="}}
    )
    await harness.cluster.create_object(
        NETWORK_POLICIES, {"metadata": meta(names.network_policy), "spec": {"podSelector": {}}}
    )
    await harness.cluster.create_object(
        JOBS,
        {
            "metadata": meta(names.job),
            "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": []}}},
        },
    )
    return names


def run_objects_left(harness: Harness, names: RunNames) -> list[str]:
    return [
        object_name
        for spec, object_name in (
            (JOBS, names.job),
            (SECRETS, names.secret),
            (NETWORK_POLICIES, names.network_policy),
        )
        if harness.cluster.get_object(spec, RUN_NS, object_name) is not None
    ]


async def test_deletion_removes_run_objects_whose_job_uid_was_never_recorded(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    await harness.create_train("orphan", suspend=True)
    await harness.wait_summary("orphan", "Suspended")
    names = await leave_unrecorded_run(harness, "orphan")
    await harness.cluster.delete_object(TRAINS, STATION_NS, "orphan")
    await harness.wait_for(
        lambda: harness.cluster.get_object(TRAINS, STATION_NS, "orphan") is None,
        what="the Train to be deleted",
    )
    assert run_objects_left(harness, names) == []


async def test_suspend_stops_a_job_whose_uid_was_never_recorded(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("half", suspend=True)
    await harness.wait_summary("half", "Suspended")
    names = await leave_unrecorded_run(harness, "half")
    body = await harness.wait_summary("half", "Failed")
    assert condition(body, "Failed")["reason"] == "Cancelled"
    await harness.wait_for(
        lambda: run_objects_left(harness, names) == [], what="the run objects to be removed"
    )


async def test_pods_outside_the_run_namespace_cannot_fake_a_runs_outcome(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    job = await start(harness, "real")
    body = harness.train("real")
    uid, job_uid = body["metadata"]["uid"], body["status"]["run"]["jobUid"]
    # A researcher can write Pods in the station namespace, with the run's labels and owner.
    await harness.cluster.create_object(
        PODS,
        {
            "metadata": {
                "name": "fake",
                "namespace": STATION_NS,
                "labels": run_labels(uid, STATION_NS, "real"),
                "ownerReferences": [{"kind": "Job", "name": job, "uid": job_uid}],
            },
            "spec": {"containers": []},
            "status": {
                "phase": "Pending",
                "containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}],
            },
        },
    )
    await asyncio.sleep(harness.settings.poll_interval_seconds * 3)
    assert harness.summary("real") == "Queued"
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("real", "Running")


async def test_the_attempts_count_never_goes_down(harness: Harness) -> None:
    """A Job controller between two updates (an ended pod no longer active, not yet counted)
    or pods deleted under a running Job: the recorded attempts stay."""
    await harness.apply_policy()
    job = await start(harness, "steady-count")
    await harness.jobs.run(RUN_NS, job)
    await harness.wait_summary("steady-count", "Running")
    await harness.wait_for(lambda: harness.train("steady-count")["status"].get("attempts") == 1)
    await asyncio.sleep(1.0)  # settled
    version = harness.train("steady-count")["metadata"]["resourceVersion"]
    await harness.cluster.patch_object(
        JOBS, RUN_NS, job, {"status": {"active": 0, "ready": 0}}, subresource="status"
    )
    await asyncio.sleep(1.5)  # the gathered wake-up and its pass
    body = harness.train("steady-count")
    assert body["status"]["attempts"] == 1
    assert body["metadata"]["resourceVersion"] == version  # nothing new to write
