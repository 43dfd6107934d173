"""Benchmark: the operator against the emulated cluster, next to a minimal hand-written client.

Not a test (nothing here passes or fails). It prints, for the real operator (``pht operator``
as a subprocess) and for a baseline client that performs only the writes a run requires:

* Kubernetes API writes per Train from creation to Job created, Events counted separately;
* create-to-Job latency p50/p99 measured at the API server (Train ADDED → Job ADDED), and the
  operator's own admission-to-Job histogram (``pht_run_start_latency_seconds``) p50/p99;
* resident memory (RSS) of the process after it handled all Trains;
* the ratios operator / baseline.

The emulator keeps only the last 100 requests in its log so its own cost stays flat; the
station API is the test double from ``tests/operator`` (in-memory; it is not what is measured).

    .venv/bin/python bench/operator_throughput.py   # 200 Trains: writes/latency; 1000: RSS
    .venv/bin/python bench/operator_throughput.py --trains 50 --rss-trains 200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "operator"))

from stationapi_double import OPERATOR_TOKEN, StationApiDouble  # noqa: E402

from pht_contract import constants  # noqa: E402
from pht_contract.evaluation import evaluate  # noqa: E402
from pht_contract.hashing import spec_hash  # noqa: E402
from pht_contract.policies import StationPolicySpec  # noqa: E402
from pht_contract.trains import TrainSpec  # noqa: E402
from pht_operator import runs  # noqa: E402
from pht_operator.names import run_names  # noqa: E402
from pht_operator.settings import OperatorSettings  # noqa: E402
from pht_sandbox.emulator import (  # noqa: E402
    JOBS,
    NAMESPACES,
    POLICIES,
    TRAINS,
    ClusterEmulator,
    write_kubeconfig,
)

RATE = [20.0]
STATION_NS = "pht-requests"
RUN_NS = "pht-runs"
DIGEST = "sha256:" + "3f1c" * 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy() -> dict[str, Any]:
    body = yaml.safe_load((REPO / "examples/policies/station-policy.yaml").read_text())
    body["metadata"] = {"name": constants.STATION_POLICY_NAME, "namespace": STATION_NS}
    body["spec"]["approval"]["mode"] = "None"
    body["spec"]["limits"]["maxConcurrentTrains"] = 1000  # the schema maximum
    return dict(body)


def train(name: str) -> dict[str, Any]:
    body = yaml.safe_load((REPO / "examples/trains/kaplan-meier.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": STATION_NS}
    body["spec"]["image"] = f"ghcr.io/pht-station/trains/kaplan-meier:0.1.0@{DIGEST}"
    return dict(body)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def histogram_quantile(text: str, name: str, q: float) -> tuple[float, int]:
    """Prometheus-style quantile from cumulative buckets (linear within a bucket)."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return math.nan, 0
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound, int(total)
            span = count - lower_count
            fraction = (rank - lower_count) / span if span else 1.0
            return lower_bound + (bound - lower_bound) * fraction, int(total)
        lower_bound, lower_count = bound, count
    return buckets[-1][0], int(total)


@dataclass
class Figures:
    label: str
    trains: int = 0
    writes: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    histogram_p50: float = math.nan
    histogram_p99: float = math.nan
    rss_trains: int = 0
    rss: float = math.nan
    rss_idle: float = math.nan

    @property
    def writes_per_train(self) -> float:
        other = sum(v for k, v in self.writes.items() if k != "events")
        return other / self.trains if self.trains else math.nan

    @property
    def events_per_train(self) -> float:
        return self.writes["events"] / self.trains if self.trains else math.nan


class Bed:
    """Emulator + station API double + the latency probe at the API server."""

    def __init__(self) -> None:
        self.cluster = ClusterEmulator(request_log_limit=100, bookmark_interval=30.0)
        self.station = StationApiDouble()
        self.created: dict[str, float] = {}
        self.job_at: dict[str, float] = {}
        self.cluster.add_listener(self._observe)

    def _observe(self, event: str, spec: Any, obj: dict[str, Any]) -> None:
        if event != "ADDED":
            return
        if spec.key == TRAINS.key:
            self.created[obj["metadata"]["uid"]] = time.monotonic()
        elif spec.key == JOBS.key:
            uid = obj["metadata"]["labels"][constants.LABEL_TRAIN_UID]
            self.job_at.setdefault(uid, time.monotonic())

    def writes(self) -> collections.Counter[str]:
        counts: collections.Counter[str] = collections.Counter()
        for (method, plural, sub), value in self.cluster.writes.items():
            key = "events" if plural == "events" else f"{method} {plural}{'/' + sub if sub else ''}"
            counts[key] += value
        return counts

    async def setup(self) -> None:
        for namespace in (STATION_NS, RUN_NS):
            await self.cluster.create_object(NAMESPACES, {"metadata": {"name": namespace}})
        await self.cluster.create_object(POLICIES, policy())

    async def feed(self, names: list[str], wait_for: int, timeout: float, rate: float) -> float:
        """Create Trains at ``rate`` per second, then wait until ``wait_for`` Jobs exist."""
        start = time.monotonic()
        for index, name in enumerate(names):
            await self.cluster.create_object(TRAINS, train(name))
            delay = start + (index + 1) / rate - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
        deadline = time.monotonic() + timeout
        while len(self.job_at) < wait_for and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    def latencies(self) -> list[float]:
        return [self.job_at[u] - self.created[u] for u in self.job_at if u in self.created]


async def run_operator_case(args: argparse.Namespace) -> Figures:
    figures = Figures("operator (Kopf)")
    bed = Bed()
    async with bed.cluster.serving() as url, bed.station.serving() as station_url:
        await bed.setup()
        workdir = Path(tempfile.mkdtemp(prefix="pht-bench-"))
        kubeconfig = write_kubeconfig(workdir / "kubeconfig", url)
        metrics_port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "PHT_OPERATOR_STATION_NAMESPACES": STATION_NS,
                "PHT_OPERATOR_RUN_NAMESPACE": RUN_NS,
                "PHT_OPERATOR_STATION_API_URL": station_url,
                "PHT_OPERATOR_RUN_API_URL": "http://10.96.0.50:8081",
                "PHT_OPERATOR_STATION_API_NAMESPACE": "pht-station",
                "PHT_OPERATOR_API_TOKEN": OPERATOR_TOKEN,
                "PHT_OPERATOR_METRICS_PORT": str(metrics_port),
                "PHT_OPERATOR_HEALTH_PORT": "0",
                "PHT_OPERATOR_POLL_INTERVAL_SECONDS": "30",
                "PHT_OPERATOR_STATION_NAME": "bench",
            }
        )
        log = (workdir / "operator.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pht_cli.main",
            "operator",
            "--kubeconfig",
            str(kubeconfig),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        try:
            await asyncio.sleep(3.0)  # start-up (imports, login, initial listing)
            figures.rss_idle = rss_mib(process.pid)
            before = bed.writes()
            names = [f"bench-{i:04d}" for i in range(args.trains)]
            await bed.feed(names, args.trains, timeout=120, rate=args.rate)
            await asyncio.sleep(1.0)  # let trailing Events land
            figures.trains = args.trains
            figures.writes = bed.writes() - before
            figures.latencies = bed.latencies()
            async with httpx.AsyncClient(timeout=10) as client:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            figures.histogram_p50, _ = histogram_quantile(
                text, "pht_run_start_latency_seconds", 0.5
            )
            figures.histogram_p99, _ = histogram_quantile(
                text, "pht_run_start_latency_seconds", 0.99
            )
            more = [f"bench-{i:04d}" for i in range(args.trains, args.rss_trains)]
            await bed.feed(more, args.rss_trains, timeout=300, rate=args.rss_rate)
            await asyncio.sleep(2.0)
            figures.rss_trains = len(bed.job_at)
            figures.rss = rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
            await bed.cluster.close_watches()
    return figures


# -- the baseline: a minimal hand-written client --------------------------------------------------


async def baseline_client(url: str, ready: Path) -> None:
    """Watch Trains; for each new one: finalizer, Secret, NetworkPolicy, Job, status. Nothing else.

    No Kopf, no retries, no events, no approvals, no follow-up: the floor for the writes an
    operator *must* make to start a run, with the same manifests as the operator.
    """
    settings = OperatorSettings(
        station_namespaces=[STATION_NS], run_namespace=RUN_NS, run_api_url="http://10.96.0.50:8081"
    )
    workers = asyncio.Semaphore(16)  # as many as the operator's default workers
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        raw_policy = (
            await client.get(
                f"/apis/{constants.GROUP_VERSION}/namespaces/{STATION_NS}/stationpolicies/"
                f"{constants.STATION_POLICY_NAME}"
            )
        ).json()
        station_policy = StationPolicySpec.model_validate(raw_policy["spec"])
        trains_path = f"/apis/{constants.GROUP_VERSION}/namespaces/{STATION_NS}/trains"
        ready.write_text("ready")
        merge = {"Content-Type": "application/merge-patch+json"}

        async def start(body: dict[str, Any]) -> None:
            async with workers:
                await start_run(body)

        async def start_run(body: dict[str, Any]) -> None:
            meta = body["metadata"]
            spec = TrainSpec.model_validate(body["spec"])
            decision = evaluate(spec, station_policy)
            request = runs.RunRequest(
                uid=meta["uid"],
                namespace=STATION_NS,
                name=meta["name"],
                spec=spec,
                spec_hash=spec_hash(spec),
                policy=station_policy,
                timeout_seconds=decision.timeout_seconds,
                names=run_names(meta["uid"], meta["name"]),
            )
            patched = await client.patch(
                f"{trains_path}/{meta['name']}",
                json={"metadata": {"finalizers": [constants.FINALIZER]}},
                headers=merge,
            )
            secret = runs.build_secret(request, os.urandom(16).hex(), settings)
            await client.post(f"/api/v1/namespaces/{RUN_NS}/secrets", json=secret)
            netpol = runs.build_network_policy(request, settings)
            await client.post(
                f"/apis/networking.k8s.io/v1/namespaces/{RUN_NS}/networkpolicies", json=netpol
            )
            job = runs.build_job(request, settings)
            created = await client.post(f"/apis/batch/v1/namespaces/{RUN_NS}/jobs", json=job)
            status = {
                "summary": "Queued",
                "run": {
                    "jobName": job["metadata"]["name"],
                    "jobUid": created.json()["metadata"]["uid"],
                },
            }
            await client.patch(
                f"{trains_path}/{meta['name']}/status",
                json={
                    "metadata": {"resourceVersion": patched.json()["metadata"]["resourceVersion"]},
                    "status": status,
                },
                headers=merge,
            )

        tasks: set[asyncio.Task[None]] = set()
        params = {"watch": "true", "resourceVersion": "0"}
        async with client.stream("GET", trains_path, params=params, timeout=None) as response:
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                body = event.get("object") or {}
                if event.get("type") == "ADDED" and not body.get("status"):
                    task = asyncio.create_task(start(body))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)


async def run_baseline_case(args: argparse.Namespace) -> Figures:
    figures = Figures("minimal client")
    bed = Bed()
    async with bed.cluster.serving() as url:
        await bed.setup()
        workdir = Path(tempfile.mkdtemp(prefix="pht-bench-"))
        ready = workdir / "ready"
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--baseline-client", url, str(ready)
        )
        try:
            while not ready.exists():
                if process.returncode is not None:
                    raise RuntimeError("the baseline client exited")
                await asyncio.sleep(0.05)
            figures.rss_idle = rss_mib(process.pid)
            before = bed.writes()
            names = [f"bench-{i:04d}" for i in range(args.trains)]
            await bed.feed(names, args.trains, timeout=120, rate=args.rate)
            await asyncio.sleep(1.0)  # let the trailing status writes land
            figures.trains = args.trains
            figures.writes = bed.writes() - before
            figures.latencies = bed.latencies()
            more = [f"bench-{i:04d}" for i in range(args.trains, args.rss_trains)]
            await bed.feed(more, args.rss_trains, timeout=300, rate=args.rss_rate)
            await asyncio.sleep(1.0)
            figures.rss_trains = len(bed.job_at)
            figures.rss = rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
            await bed.cluster.close_watches()
    return figures


def report(operator: Figures, baseline: Figures) -> None:
    def ms(value: float) -> str:
        return f"{value * 1000:.0f} ms"

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}×" if b and not math.isnan(a) and not math.isnan(b) else "n/a"

    rows = [
        ("Trains (writes, latency)", str(operator.trains), str(baseline.trains), ""),
        ("arrival rate", f"{RATE[0]:.0f}/s", f"{RATE[0]:.0f}/s", ""),
        (
            "API writes per Train to Job (excl. Events)",
            f"{operator.writes_per_train:.2f}",
            f"{baseline.writes_per_train:.2f}",
            ratio(operator.writes_per_train, baseline.writes_per_train),
        ),
        (
            "Events per Train",
            f"{operator.events_per_train:.2f}",
            f"{baseline.events_per_train:.2f}",
            "",
        ),
        (
            "create→Job p50 (at the API server)",
            ms(statistics.median(operator.latencies)) if operator.latencies else "n/a",
            ms(statistics.median(baseline.latencies)) if baseline.latencies else "n/a",
            ratio(statistics.median(operator.latencies), statistics.median(baseline.latencies)),
        ),
        (
            "create→Job p99 (at the API server)",
            ms(percentile(operator.latencies, 0.99)),
            ms(percentile(baseline.latencies, 0.99)),
            ratio(percentile(operator.latencies, 0.99), percentile(baseline.latencies, 0.99)),
        ),
        (
            "admission→Job p50 / p99 (operator histogram)",
            f"{ms(operator.histogram_p50)} / {ms(operator.histogram_p99)}",
            "n/a",
            "",
        ),
        (
            "RSS idle (started, no Trains)",
            f"{operator.rss_idle:.0f} MiB",
            f"{baseline.rss_idle:.0f} MiB",
            ratio(operator.rss_idle, baseline.rss_idle),
        ),
        (
            f"RSS after {operator.rss_trains} / {baseline.rss_trains} Trains",
            f"{operator.rss:.0f} MiB",
            f"{baseline.rss:.0f} MiB",
            ratio(operator.rss, baseline.rss),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'operator':>16}  {'minimal client':>16}  {'ratio':>7}")
    for name, a, b, c in rows:
        print(f"{name:{width}}  {a:>16}  {b:>16}  {c:>7}")
    print()
    print("operator writes by kind:", dict(sorted(operator.writes.items())))
    print("baseline writes by kind:", dict(sorted(baseline.writes.items())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trains", type=int, default=200)
    parser.add_argument("--rss-trains", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="Trains created per second")
    parser.add_argument(
        "--rss-rate", type=float, default=100.0, help="creation rate on the way to --rss-trains"
    )
    parser.add_argument("--baseline-client", nargs=2, metavar=("URL", "READY_FILE"))
    args = parser.parse_args()
    if args.baseline_client:
        url, ready = args.baseline_client
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(baseline_client(url, Path(ready)))
        return 0
    args.rss_trains = max(args.rss_trains, args.trains)
    RATE[0] = args.rate
    operator = asyncio.run(run_operator_case(args))
    baseline = asyncio.run(run_baseline_case(args))
    report(operator, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
