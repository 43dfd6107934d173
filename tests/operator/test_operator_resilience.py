"""Transient faults converge; liveness fails on a hung watch; metrics stay bounded."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from operator_harness import RUN_NS, STATION_NS, Harness, condition

from pht_contract.trains import TrainStatus
from pht_sandbox.emulator import JOBS, TRAINS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def ported(bed: Harness) -> AsyncIterator[Harness]:
    bed.settings = bed.settings.model_copy(
        update={
            "health_port": free_port(),
            "metrics_port": free_port(),
            "watch_timeout_seconds": 1.0,
            "stall_factor": 2.0,
        }
    )
    yield bed


async def test_injected_api_faults_and_dropped_watches_converge(harness: Harness) -> None:
    faults = harness.cluster.faults
    faults.fail(409, methods=["PATCH"], plural="trains", subresource="status", count=3)
    faults.fail(500, methods=["POST"], plural="jobs", count=2)
    faults.fail(503, methods=["POST"], plural="secrets", count=1)
    faults.fail(500, methods=["GET"], plural="jobs", count=2)
    harness.station.fail_next = 2
    await harness.apply_policy()
    for name in ("a", "b", "c"):
        await harness.create_train(name)
    for name in ("a", "b", "c"):
        await harness.wait_summary(name, "Queued")
    faults.drop_watches()
    for name in ("a", "b"):
        job = harness.job_name(name)
        await harness.jobs.run(RUN_NS, job)
        faults.drop_watches()
        await harness.jobs.succeed(RUN_NS, job)
    # a hung watch: events of "c" are not delivered until the stream is replaced
    faults.hang_watches = True
    faults.drop_watches()
    job = harness.job_name("c")
    await harness.jobs.run(RUN_NS, job)
    await harness.jobs.succeed(RUN_NS, job)
    await asyncio.sleep(0.5)
    faults.hang_watches = False
    faults.drop_watches()
    for name in ("a", "b", "c"):
        body = await harness.wait_summary(name, "Succeeded", timeout=20)
        status = TrainStatus.model_validate(body["status"])  # never corrupted
        assert {c.type.value for c in status.conditions} >= {
            "Admitted",
            "Approved",
            "Running",
            "ResultReleased",
            "Succeeded",
        }
        assert len({c.type for c in status.conditions}) == len(status.conditions)
    assert len(harness.cluster.list_objects(JOBS, RUN_NS)) == 3
    assert all(rule.remaining == 0 for rule in faults.rules)


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(url)


@pytest.mark.slow
async def test_liveness_fails_on_a_hung_watch_and_recovers(ported: Harness) -> None:
    from operator_harness import run_in_thread

    async with run_in_thread(ported) as harness:
        health = f"http://127.0.0.1:{harness.settings.health_port}/healthz"
        assert (await _get(health)).status_code == 200
        harness.cluster.faults.hang_watches = True
        harness.cluster.faults.drop_watches()
        deadline = asyncio.get_running_loop().time() + 10
        status = 200
        while status == 200 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            status = (await _get(health)).status_code
        assert status == 503
        assert (await _get(health)).json()["alive"] is False
        harness.cluster.faults.hang_watches = False
        harness.cluster.faults.drop_watches()
        deadline = asyncio.get_running_loop().time() + 10
        while status != 200 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            status = (await _get(health)).status_code
        assert status == 200


async def test_metrics_have_bounded_labels_and_no_train_identity(ported: Harness) -> None:
    from operator_harness import run_in_thread

    async with run_in_thread(ported) as harness:
        await harness.apply_policy(organisations=["maastro", "nki"])
        await harness.create_train(
            "secret-project-name",
            resources={"gpu": 1, "gpuModel": "NVIDIA-H100-80GB-HBM3"},
        )
        await harness.create_train("refused", requester={"organisation": "acme"})
        await harness.wait_summary("secret-project-name", "Queued")
        job = harness.job_name("secret-project-name")
        await harness.jobs.run(RUN_NS, job)
        await harness.jobs.succeed(RUN_NS, job)
        await harness.wait_summary("secret-project-name", "Succeeded")
        await harness.wait_summary("refused", "Rejected")
        url = f"http://127.0.0.1:{harness.settings.metrics_port}/metrics"

        async def scrape() -> str:
            return (await _get(url)).text

        await asyncio.sleep(harness.settings.poll_interval_seconds * 2)
        text = await scrape()
    samples = _samples(text)
    assert samples[("pht_trains", (("station", "test-station"), ("summary", "Succeeded")))] == 1
    assert samples[("pht_trains", (("station", "test-station"), ("summary", "Rejected")))] == 1
    assert (
        samples[
            (
                "pht_admissions_total",
                (
                    ("outcome", "Rejected"),
                    ("reason", "UnknownOrganisation"),
                    ("station", "test-station"),
                ),
            )
        ]
        == 1
    )
    assert samples[("pht_admission_latency_seconds_count", (("station", "test-station"),))] >= 1
    assert samples[("pht_run_duration_seconds_count", (("station", "test-station"),))] == 1
    assert (
        "pht_gpu_seconds_total",
        (("organisation", "maastro"), ("station", "test-station")),
    ) in samples
    assert samples[("pht_operator_up", (("station", "test-station"),))] == 1
    assert "secret-project-name" not in text and "acme" not in text
    assert STATION_NS not in text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels: Any = tuple(sorted(sample.labels.items()))
            found[(sample.name, labels)] = sample.value
    return found


async def test_trains_status_is_not_touched_when_nothing_changes(harness: Harness) -> None:
    await harness.apply_policy()
    await harness.create_train("steady")
    body = await harness.wait_summary("steady", "Queued")
    version = body["metadata"]["resourceVersion"]
    await asyncio.sleep(harness.settings.poll_interval_seconds * 4)
    assert harness.train("steady")["metadata"]["resourceVersion"] == version
    assert condition(harness.cluster.get_object(TRAINS, STATION_NS, "steady"), "Admitted")


async def test_an_unreachable_station_api_shows_registration_failed_then_recovers(
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
    assert harness.summary("patient") == "Pending"
    assert harness.cluster.list_objects(JOBS, RUN_NS) == []  # no run without registration
    harness.station.refuse_registrations = False
    await harness.wait_summary("patient", "Queued", timeout=20)
