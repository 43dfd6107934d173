"""Helpers for operator tests: example objects, and a harness around the emulated cluster,
the simulated Job controller and the station API test double."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from stationapi_double import OPERATOR_TOKEN, StationApiDouble

from pht_contract import constants
from pht_operator.entrypoint import run_operator
from pht_operator.settings import OperatorSettings
from pht_sandbox.emulator import APPROVALS, POLICIES, TRAINS, ClusterEmulator
from pht_sandbox.jobcontroller import JobController

REPO = Path(__file__).resolve().parents[2]
STATION_NS = "pht-requests"
RUN_NS = "pht-runs"
DIGEST = "sha256:" + "3f1c" * 16
IMAGE = f"ghcr.io/pht-station/trains/kaplan-meier:0.1.0@{DIGEST}"

Obj = dict[str, Any]


def example(path: str) -> Obj:
    data = yaml.safe_load((REPO / "examples" / path).read_text())
    assert isinstance(data, dict)
    return data


def merge(base: Obj, overrides: Obj) -> Obj:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def policy_body(**spec: Any) -> Obj:
    body = example("policies/station-policy.yaml")
    body["metadata"] = {"name": constants.STATION_POLICY_NAME, "namespace": STATION_NS}
    body["spec"]["approval"]["mode"] = "None"
    body["spec"] = merge(body["spec"], spec)
    return body


#: Who creates Trains in these tests, as the station's admission policy would record it.
REQUESTED_BY = "oidc:alice"


def train_body(
    name: str, namespace: str = STATION_NS, *, requested_by: str | None = REQUESTED_BY, **spec: Any
) -> Obj:
    """An example Train; ``requested_by=None`` leaves out the admission policy's annotation."""
    body = example("trains/kaplan-meier.yaml")
    body["metadata"] = {"name": name, "namespace": namespace}
    if requested_by is not None:
        body["metadata"]["annotations"] = {constants.ANNOTATION_REQUESTED_BY: requested_by}
    body["spec"]["image"] = IMAGE
    body["spec"] = merge(body["spec"], spec)
    return body


def condition(body: Obj, kind: str) -> Obj | None:
    for entry in (body.get("status") or {}).get("conditions") or []:
        if entry["type"] == kind:
            return dict(entry)
    return None


@dataclass
class Harness:
    cluster: ClusterEmulator
    jobs: JobController
    station: StationApiDouble
    settings: OperatorSettings
    kubeconfig: Path
    url: str

    async def apply_policy(self, **spec: Any) -> Obj:
        body = policy_body(**spec)
        existing = self.cluster.get_object(POLICIES, STATION_NS, constants.STATION_POLICY_NAME)
        if existing is None:
            return await self.cluster.create_object(POLICIES, body)
        return await self.cluster.patch_object(
            POLICIES, STATION_NS, constants.STATION_POLICY_NAME, {"spec": body["spec"]}
        )

    async def create_train(
        self,
        name: str,
        namespace: str = STATION_NS,
        *,
        requested_by: str | None = REQUESTED_BY,
        **spec: Any,
    ) -> Obj:
        return await self.cluster.create_object(
            TRAINS, train_body(name, namespace, requested_by=requested_by, **spec)
        )

    async def approve(self, train: str, approver: str, decision: str = "Approve") -> Obj:
        body = self.train(train)
        spec_hash = body["status"]["specHash"]
        return await self.cluster.create_object(
            APPROVALS,
            {
                "metadata": {"name": f"{train}-{approver.split('@')[0]}", "namespace": STATION_NS},
                "spec": {
                    "train": {"name": train, "specHash": spec_hash},
                    "decision": decision,
                    "approver": approver,
                },
            },
        )

    def train(self, name: str, namespace: str = STATION_NS) -> Obj:
        body = self.cluster.get_object(TRAINS, namespace, name)
        assert body is not None, f"Train {name} is gone"
        return body

    def summary(self, name: str) -> str | None:
        body = self.cluster.get_object(TRAINS, STATION_NS, name)
        return None if body is None else (body.get("status") or {}).get("summary")

    def job_name(self, name: str) -> str:
        return str(self.train(name)["status"]["run"]["jobName"])

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = ""
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or predicate}")

    async def wait_summary(self, name: str, summary: str, timeout: float = 15.0) -> Obj:
        await self.wait_for(
            lambda: self.summary(name) == summary,
            timeout,
            f"{name} to be {summary} (is {self.summary(name)})",
        )
        return self.train(name)

    def events_for(self, name: str) -> list[Obj]:
        """The operator's ``events.k8s.io/v1`` Events about this Train, oldest first."""
        from pht_sandbox.emulator import NEW_EVENTS

        events = [
            e
            for e in self.cluster.list_objects(NEW_EVENTS, STATION_NS)
            if e.get("regarding", {}).get("name") == name
        ]
        return sorted(events, key=lambda e: str(e["eventTime"]))


def operator_settings(station_url: str, **overrides: Any) -> OperatorSettings:
    values: dict[str, Any] = {
        "station_namespaces": [STATION_NS],
        "run_namespace": RUN_NS,
        "station_api_url": station_url,
        "run_api_url": "http://10.96.0.50:8081",
        "station_api_namespace": "pht-station",
        "api_token": OPERATOR_TOKEN,
        "station_name": "test-station",
        "listen_host": "127.0.0.1",
        "health_port": 0,
        "metrics_port": 0,
        "watch_timeout_seconds": 1,
        "poll_interval_seconds": 0.3,
        "job_ttl_seconds": 600,
    }
    values.update(overrides)
    return OperatorSettings(**values)


@contextlib.asynccontextmanager
async def run_in_thread(bed: Harness) -> AsyncIterator[Harness]:
    """Run the real operator (Kopf) in its own thread and event loop against the bed.

    Kopf treats every task in its loop as its own on exit; a separate loop keeps the emulator's
    tasks out of its reach.
    """
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(
            run_operator(bed.settings, kubeconfig=bed.kubeconfig, stop_flag=stop, ready_flag=ready)
        ),
        daemon=True,
    )
    thread.start()
    assert await asyncio.to_thread(ready.wait, 15), "the operator did not start"
    try:
        yield bed
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 15)
        await bed.cluster.close_watches()
