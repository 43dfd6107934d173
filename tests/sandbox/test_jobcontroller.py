"""The simulated Job controller produces the statuses a real cluster shows, marked simulated."""

from __future__ import annotations

import asyncio

from pht_sandbox.emulator import JOBS, SIMULATED_ANNOTATION, ClusterEmulator
from pht_sandbox.jobcontroller import JobController

JOB = {
    "metadata": {"name": "j", "namespace": "r", "labels": {"a": "b"}},
    "spec": {"backoffLimit": 2, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}},
}


def condition(job: dict, kind: str) -> dict | None:
    return next((c for c in job["status"].get("conditions", []) if c["type"] == kind), None)


async def test_a_job_runs_and_completes() -> None:
    cluster = ClusterEmulator()
    jobs = JobController(cluster)
    await cluster.create_object(JOBS, JOB)
    await jobs.schedule("r", "j")
    (pod,) = jobs.pods("r", "j")
    assert pod["status"]["phase"] == "Pending"
    assert pod["metadata"]["annotations"][SIMULATED_ANNOTATION] == "true"
    assert pod["metadata"]["labels"]["a"] == "b"
    await jobs.run("r", "j")
    assert jobs.pods("r", "j")[0]["status"]["phase"] == "Running"
    job = await jobs.succeed("r", "j")
    assert condition(job, "Complete")["status"] == "True"
    assert job["status"]["succeeded"] == 1
    assert cluster.get_object(JOBS, "r", "j")["metadata"]["annotations"][SIMULATED_ANNOTATION]


async def test_failures_carry_kubernetes_reasons() -> None:
    cluster = ClusterEmulator()
    jobs = JobController(cluster)
    await cluster.create_object(JOBS, JOB)
    await jobs.image_pull_error("r", "j", "ImagePullBackOff")
    waiting = jobs.pods("r", "j")[0]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff"
    job = await jobs.fail("r", "j", "BackoffLimitExceeded")
    assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 3
    await cluster.create_object(JOBS, {**JOB, "metadata": {**JOB["metadata"], "name": "k"}})
    pod = await jobs.unschedulable("r", "k")
    assert pod["status"]["conditions"][0]["reason"] == "Unschedulable"
    job = await jobs.fail("r", "k", "DeadlineExceeded")
    assert condition(job, "Failed")["reason"] == "DeadlineExceeded"


async def test_autopilot_and_ttl() -> None:
    cluster = ClusterEmulator()
    jobs = JobController(cluster)
    jobs.autopilot(lambda job: "succeed", step_seconds=0.01)
    await cluster.create_object(JOBS, JOB)
    for _ in range(100):
        job = cluster.get_object(JOBS, "r", "j") or {}
        if job.get("status", {}).get("conditions") and condition(job, "Complete"):
            break
        await asyncio.sleep(0.01)
    await cluster.patch_object(JOBS, "r", "j", {"spec": {"ttlSecondsAfterFinished": 0}})
    for _ in range(100):
        if cluster.get_object(JOBS, "r", "j") is None:
            break
        await asyncio.sleep(0.01)
    assert cluster.get_object(JOBS, "r", "j") is None
    await jobs.stop()


async def test_a_failed_container_reports_its_exit_code_and_termination_message() -> None:
    cluster = ClusterEmulator()
    jobs = JobController(cluster)
    await cluster.create_object(JOBS, JOB)
    await jobs.run("r", "j")
    await jobs.fail("r", "j", "BackoffLimitExceeded", exit_code=3, message="InvalidParameters")
    (container,) = jobs.pods("r", "j")[0]["status"]["containerStatuses"]
    terminated = container["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert terminated["message"] == "InvalidParameters"
    # Without an exit code (a deadline) the pod just fails, as before.
    await cluster.create_object(JOBS, {**JOB, "metadata": {**JOB["metadata"], "name": "k"}})
    await jobs.run("r", "k")
    await jobs.fail("r", "k", "DeadlineExceeded")
    assert jobs.pods("r", "k")[0]["status"]["phase"] == "Failed"
