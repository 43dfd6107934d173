"""Benchmark: the operator next to a minimal hand-written client, on the emulated cluster or on
the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok).

Not a test (nothing here passes or fails). It runs the real operator (``pht operator`` as a
subprocess) and then, in the same run and against the same kind of cluster, a baseline client
that performs only the writes a run requires, and prints for both:

* create-to-Job latency p50/p99 (Train ADDED → Job ADDED, seen by a watch in this process) at
  each arrival rate of a bounded ramp (``--rates``, ``--step-trains`` Trains per step); the ramp
  stops after the first step whose p99 reaches one second;
* the saturation throughput: the highest arrival rate whose p99 create→Job stayed under 1 s;
* CPU seconds per Train: the process's user+system time (``/proc/<pid>/stat``) over the ramp,
  until every Job exists and two quiet seconds passed, divided by the Trains created;
* resident memory (RSS) idle and after ``--rss-trains`` Trains;
* on the emulator also the Kubernetes API writes per Train (Events apart) and the operator's
  own admission→Job histogram; the ratios operator / baseline.

The emulator keeps only the last 100 requests in its log so its own cost stays flat; the
station API is the in-memory test double from ``tests/operator`` (not what is measured). With
``--cluster real`` the control plane is started from the binaries ``make tools`` builds (an
error saying how to build them if missing), everything listens on 127.0.0.1 only, and the
operator and the baseline use the cluster-admin client certificate.

    .venv/bin/python bench/operator_throughput.py                  # emulator, ~2 minutes
    .venv/bin/python bench/operator_throughput.py --cluster real   # real API server, ~4 minutes
    .venv/bin/python bench/operator_throughput.py --rates 5,10 --step-trains 20 --rss-trains 100

To see where the operator's CPU goes, ``PHT_BENCH_PYSPY=FILE`` attaches ``py-spy record`` to it
(collapsed stacks in FILE; ``pip install py-spy`` first) and ``PHT_BENCH_PROFILE=FILE`` runs it
under cProfile instead (which slows Python code several times; the figures are then not the
operator's). ``PHT_BENCH_TRACEMALLOC=DIR`` runs it with tracemalloc on and writes, idle and after
the RSS Trains, a snapshot (``DIR/1.tracemalloc``, ``DIR/2.tracemalloc``; compare them with
``tracemalloc.Snapshot.load(...).compare_to``) and its live objects by type (``DIR/*.types.json``);
tracemalloc's own bookkeeping then inflates the RSS figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import math
import os
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
from pht_operator import runobjects  # noqa: E402
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

DIGEST = "sha256:" + "3f1c" * 16
#: The p99 create→Job under which an arrival rate counts as sustained.
SATURATION_P99_SECONDS = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy(namespace: str) -> dict[str, Any]:
    body = yaml.safe_load((REPO / "examples/policies/station-policy.yaml").read_text())
    body["metadata"] = {"name": constants.STATION_POLICY_NAME, "namespace": namespace}
    body["spec"]["approval"]["mode"] = "None"
    body["spec"]["limits"]["maxConcurrentTrains"] = 1000  # the schema maximum
    return dict(body)


def train(name: str, namespace: str) -> dict[str, Any]:
    body = yaml.safe_load((REPO / "examples/trains/kaplan-meier.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["image"] = f"ghcr.io/pht-station/trains/kaplan-meier:0.1.0@{DIGEST}"
    # Every Train's query text differs (a comment), as distinct analyses would: the operator
    # parses each spec's queries once, and no cache may make the workload look lighter.
    for query in body["spec"]["queries"]:
        query["sparql"] += f"# {name}\n"
    return dict(body)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


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
class Step:
    rate: float
    trains: int
    latencies: list[float]

    @property
    def complete(self) -> bool:
        return len(self.latencies) == self.trains

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else math.nan

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99) if self.complete else math.inf

    @property
    def sustained(self) -> bool:
        return self.complete and self.p99 < SATURATION_P99_SECONDS


@dataclass
class Figures:
    label: str
    steps: list[Step] = field(default_factory=list)
    cpu_seconds: float = math.nan
    writes: collections.Counter[str] = field(default_factory=collections.Counter)
    histogram_p50: float = math.nan
    histogram_p99: float = math.nan
    rss_trains: int = 0
    rss: float = math.nan
    rss_idle: float = math.nan

    @property
    def trains(self) -> int:
        return sum(step.trains for step in self.steps)

    @property
    def cpu_per_train(self) -> float:
        return self.cpu_seconds / self.trains if self.trains else math.nan

    @property
    def saturation(self) -> float:
        sustained = [step.rate for step in self.steps if step.sustained]
        return max(sustained) if sustained else 0.0

    @property
    def writes_per_train(self) -> float:
        other = sum(v for k, v in self.writes.items() if k != "events")
        return other / self.trains if self.trains and self.writes else math.nan

    @property
    def events_per_train(self) -> float:
        return self.writes["events"] / self.trains if self.trains and self.writes else math.nan


class Bed(Protocol):
    """A cluster with two namespaces, a StationPolicy and a probe at the API server."""

    created: dict[str, float]
    job_at: dict[str, float]

    async def create_train(self, body: dict[str, Any]) -> None: ...

    def writes(self) -> collections.Counter[str]: ...


async def feed(
    bed: Bed, names: list[str], namespace: str, wait_for: int, timeout: float, rate: float
) -> None:
    """Create Trains at ``rate`` per second, then wait until ``wait_for`` Jobs exist."""
    start = time.monotonic()
    for index, name in enumerate(names):
        await bed.create_train(train(name, namespace))
        delay = start + (index + 1) / rate - time.monotonic()
        await asyncio.sleep(max(0.0, delay))
    deadline = time.monotonic() + timeout
    while len(bed.job_at) < wait_for and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def latencies(bed: Bed, uids: set[str]) -> list[float]:
    return [bed.job_at[u] - bed.created[u] for u in uids if u in bed.job_at and u in bed.created]


class EmulatorBed:
    """Emulator + the latency probe as a listener on the emulator itself."""

    def __init__(self) -> None:
        self.cluster = ClusterEmulator(request_log_limit=100, bookmark_interval=30.0)
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

    async def create_train(self, body: dict[str, Any]) -> None:
        await self.cluster.create_object(TRAINS, body)

    @contextlib.asynccontextmanager
    async def serving(self, station_ns: str, run_ns: str) -> AsyncIterator[Path]:
        """Yields a kubeconfig for the emulator with both namespaces and the policy made."""
        async with self.cluster.serving() as url:
            for namespace in (station_ns, run_ns):
                await self.cluster.create_object(NAMESPACES, {"metadata": {"name": namespace}})
            await self.cluster.create_object(POLICIES, policy(station_ns))
            workdir = Path(tempfile.mkdtemp(prefix="pht-bench-"))
            try:
                yield write_kubeconfig(workdir / "kubeconfig", url)
            finally:
                await self.cluster.close_watches()


def tls_client_args(kubeconfig: Path) -> dict[str, Any]:
    """httpx client arguments (server, CA, client certificate) from a kubeconfig file."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    if not cluster["server"].startswith("https://"):
        return {"base_url": cluster["server"]}
    context = ssl.create_default_context(cafile=cluster["certificate-authority"])
    context.load_cert_chain(user["client-certificate"], user["client-key"])
    return {"base_url": cluster["server"], "verify": context}


class RealBed:
    """The real control plane; the probe is a pair of watches from this process."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.kubeconfig: Path = plane.kubeconfigs["admin"]
        self.created: dict[str, float] = {}
        self.job_at: dict[str, float] = {}
        self._client = httpx.AsyncClient(**tls_client_args(self.kubeconfig), timeout=30)
        self._watches: list[asyncio.Task[None]] = []

    def writes(self) -> collections.Counter[str]:
        return collections.Counter()  # the real API server keeps no per-client request log

    async def create_train(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        made = await self._client.post(
            f"/apis/{constants.GROUP_VERSION}/namespaces/{namespace}/trains", json=body
        )
        if made.status_code != 201:
            raise RuntimeError(f"creating a Train: {made.status_code} {made.text[:300]}")

    async def _watch(
        self, path: str, on_added: Callable[[dict[str, Any]], None], opened: asyncio.Event
    ) -> None:
        listed = await self._client.get(path)
        for _ in range(100):  # a CRD just Established may answer 404 for a moment
            if listed.status_code == 200:
                break
            await asyncio.sleep(0.1)
            listed = await self._client.get(path)
        version = listed.json()["metadata"]["resourceVersion"]
        while True:
            params = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true"}
            async with self._client.stream("GET", path, params=params, timeout=None) as answer:
                opened.set()
                async for line in answer.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    body = event["object"]
                    version = body["metadata"].get("resourceVersion", version)
                    if event["type"] == "ADDED":
                        on_added(body)

    def _train_added(self, body: dict[str, Any]) -> None:
        self.created.setdefault(body["metadata"]["uid"], time.monotonic())

    def _job_added(self, body: dict[str, Any]) -> None:
        uid = (body["metadata"].get("labels") or {}).get(constants.LABEL_TRAIN_UID)
        if uid:
            self.job_at.setdefault(uid, time.monotonic())

    async def _apply(self, path: str, body: dict[str, Any]) -> None:
        made = await self._client.post(path, json=body)
        if made.status_code not in (201, 409):
            raise RuntimeError(f"POST {path}: {made.status_code} {made.text[:300]}")

    async def install_crds(self) -> None:
        crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        names = []
        for path in sorted((REPO / "charts/pht-station/crds").glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            names.append(body["metadata"]["name"])
            await self._apply(crds, body)
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                got = (await self._client.get(f"{crds}/{name}")).json()
                conditions = (got.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not established after 60 s")
                await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def serving(self, station_ns: str, run_ns: str) -> AsyncIterator[Path]:
        """Yields the admin kubeconfig with both namespaces, the policy and the probe ready."""
        for namespace in (station_ns, run_ns):
            await self._apply("/api/v1/namespaces", {"metadata": {"name": namespace}})
        await self._apply(
            f"/apis/{constants.GROUP_VERSION}/namespaces/{station_ns}/stationpolicies",
            policy(station_ns),
        )
        self.created.clear()
        self.job_at.clear()
        opened = [asyncio.Event(), asyncio.Event()]
        self._watches = [
            asyncio.create_task(
                self._watch(
                    f"/apis/{constants.GROUP_VERSION}/namespaces/{station_ns}/trains",
                    self._train_added,
                    opened[0],
                )
            ),
            asyncio.create_task(
                self._watch(f"/apis/batch/v1/namespaces/{run_ns}/jobs", self._job_added, opened[1])
            ),
        ]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 30)
        try:
            yield self.kubeconfig
        finally:
            for task in self._watches:
                if task.done() and task.exception() is not None:
                    print(f"  a probe watch failed: {task.exception()!r}", file=sys.stderr)
                task.cancel()
            await asyncio.gather(*self._watches, return_exceptions=True)

    async def aclose(self) -> None:
        await self._client.aclose()


# -- one side of the comparison: start a process, drive the ramp, read its CPU and memory --------


async def stop(process: asyncio.subprocess.Process, grace: float) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


async def drive(
    figures: Figures,
    bed: Bed,
    process: asyncio.subprocess.Process,
    station_ns: str,
    args: argparse.Namespace,
    after_ramp: Callable[[], Awaitable[None]] | None = None,
    memory_probe: Callable[[], Awaitable[None]] | None = None,
) -> None:
    figures.rss_idle = rss_mib(process.pid)
    if memory_probe is not None:
        await memory_probe()
    before_writes = bed.writes()
    cpu_before = cpu_seconds(process.pid)
    made = 0
    for rate in args.rates:
        names = [f"bench-{i:05d}" for i in range(made, made + args.step_trains)]
        known = set(bed.created)
        await feed(bed, names, station_ns, made + args.step_trains, args.step_timeout, rate)
        made += args.step_trains
        uids = set(bed.created) - known
        figures.steps.append(Step(rate, args.step_trains, latencies(bed, uids)))
        print(
            f"  {figures.label}: {rate:g} Trains/s done ({len(uids)} Trains seen, "
            f"{len(figures.steps[-1].latencies)} with their Job)",
            file=sys.stderr,
        )
        if not figures.steps[-1].sustained:
            break  # saturated: higher rates only queue more
        await asyncio.sleep(1.0)
    await settle(process.pid)
    figures.cpu_seconds = cpu_seconds(process.pid) - cpu_before
    figures.writes = bed.writes() - before_writes
    if after_ramp is not None:
        await after_ramp()
    if args.rss_trains > made:
        more = [f"bench-{i:05d}" for i in range(made, args.rss_trains)]
        await feed(bed, more, station_ns, args.rss_trains, args.rss_timeout, args.rss_rate)
    await settle(process.pid)
    figures.rss_trains = len(bed.job_at)
    figures.rss = rss_mib(process.pid)
    if memory_probe is not None:
        await memory_probe()


async def settle(pid: int, quiet: float = 2.0, longest: float = 30.0) -> None:
    """Wait until the process used under 5 % of a core for ``quiet`` seconds (at most
    ``longest``), so the CPU figure includes the work a Train causes after its Job exists."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(quiet)
        if cpu_seconds(pid) - before < 0.05 * quiet:
            return


async def start_operator(
    kubeconfig: Path, station_ns: str, run_ns: str, station_url: str, metrics_port: int
) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env.update(
        {
            "PHT_OPERATOR_STATION_NAMESPACES": station_ns,
            "PHT_OPERATOR_RUN_NAMESPACE": run_ns,
            "PHT_OPERATOR_STATION_API_URL": station_url,
            "PHT_OPERATOR_RUN_API_URL": "http://10.96.0.50:8081",
            "PHT_OPERATOR_STATION_API_NAMESPACE": "pht-station",
            "PHT_OPERATOR_API_TOKEN": OPERATOR_TOKEN,
            "PHT_OPERATOR_LISTEN_HOST": "127.0.0.1",
            "PHT_OPERATOR_METRICS_PORT": str(metrics_port),
            "PHT_OPERATOR_HEALTH_PORT": "0",
            "PHT_OPERATOR_POLL_INTERVAL_SECONDS": "30",
            "PHT_OPERATOR_STATION_NAME": "bench",
        }
    )
    spy = Path(sys.executable).with_name("py-spy")
    if os.environ.get("PHT_BENCH_PYSPY") and not spy.exists():
        raise SystemExit(f"PHT_BENCH_PYSPY needs py-spy: {sys.executable} -m pip install py-spy")
    log = (Path(tempfile.mkdtemp(prefix="pht-bench-")) / "operator.log").open("wb")
    if os.environ.get("PHT_BENCH_PROFILE"):  # cProfile the operator; stats written on SIGTERM
        profile = ["-m", "cProfile", "-o", os.environ["PHT_BENCH_PROFILE"]]
    elif os.environ.get("PHT_BENCH_TRACEMALLOC"):  # snapshots on SIGUSR1 (see memory_probe)
        profile = ["-c", MEMORY_PROBE, os.environ["PHT_BENCH_TRACEMALLOC"]]
    else:
        profile = []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *profile,
        "-m",
        "pht_cli.main",
        "operator",
        "--kubeconfig",
        str(kubeconfig),
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    if os.environ.get("PHT_BENCH_PYSPY"):  # sample the operator's CPU until it exits
        await asyncio.create_subprocess_exec(
            str(spy),
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "--output",
            os.environ["PHT_BENCH_PYSPY"],
            "--pid",
            str(process.pid),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    return process


#: Runs ``pht operator`` with tracemalloc on; each SIGUSR1 writes a snapshot of the allocations
#: and the live objects by type to ``<dir>/<n>.tracemalloc`` and ``<dir>/<n>.types.json``
#: (``-c`` scripts get their arguments in sys.argv[1:]).
MEMORY_PROBE = """
import collections, gc, json, pathlib, runpy, signal, sys, tracemalloc
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
tracemalloc.start(12)
taken = []
def dump(*_):
    taken.append(1)
    gc.collect()
    n = len(taken)
    tracemalloc.take_snapshot().dump(str(out / f"{n}.tracemalloc"))
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    (out / f"{n}.types.json").write_text(json.dumps(counts.most_common(60)))
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["pht", *sys.argv[4:]]  # after "-m pht_cli.main"
runpy.run_module("pht_cli.main", run_name="__main__")
"""


async def memory_snapshot(process: asyncio.subprocess.Process) -> None:
    """With PHT_BENCH_TRACEMALLOC, have the operator write a memory snapshot (see above)."""
    if os.environ.get("PHT_BENCH_TRACEMALLOC") and process.returncode is None:
        process.send_signal(signal.SIGUSR1)
        await asyncio.sleep(5.0)


async def operator_side(
    bed: Bed, kubeconfig: Path, station_ns: str, run_ns: str, args: argparse.Namespace
) -> Figures:
    figures = Figures("operator (Kopf)")
    station = StationApiDouble()
    async with station.serving() as station_url:
        metrics_port = free_port()
        process = await start_operator(kubeconfig, station_ns, run_ns, station_url, metrics_port)
        try:
            await asyncio.sleep(3.0)  # start-up (imports, login, initial listing)
            await settle(process.pid)

            async def read_histogram() -> None:
                async with httpx.AsyncClient(timeout=10) as client:
                    text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                name = "pht_run_start_latency_seconds"
                figures.histogram_p50, _ = histogram_quantile(text, name, 0.5)
                figures.histogram_p99, _ = histogram_quantile(text, name, 0.99)

            await drive(
                figures,
                bed,
                process,
                station_ns,
                args,
                read_histogram,
                functools.partial(memory_snapshot, process),
            )
        finally:
            await stop(process, 15)
    return figures


async def baseline_side(
    bed: Bed, kubeconfig: Path, station_ns: str, run_ns: str, args: argparse.Namespace
) -> Figures:
    figures = Figures("minimal client")
    ready = Path(tempfile.mkdtemp(prefix="pht-bench-")) / "ready"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--baseline-client",
        str(kubeconfig),
        str(ready),
        station_ns,
        run_ns,
    )
    try:
        while not ready.exists():
            if process.returncode is not None:
                raise RuntimeError("the baseline client exited")
            await asyncio.sleep(0.05)
        await settle(process.pid)
        await drive(figures, bed, process, station_ns, args)
    finally:
        await stop(process, 10)
    return figures


# -- the baseline: a minimal hand-written client --------------------------------------------------


async def baseline_client(kubeconfig: Path, ready: Path, station_ns: str, run_ns: str) -> None:
    """Watch Trains; for each new one: finalizer, Secret, NetworkPolicy, Job, status. Nothing else.

    No Kopf, no retries, no events, no approvals, no follow-up: the floor for the writes an
    operator *must* make to start a run, with the same manifests as the operator.
    """
    settings = OperatorSettings(
        station_namespaces=[station_ns], run_namespace=run_ns, run_api_url="http://10.96.0.50:8081"
    )
    workers = asyncio.Semaphore(16)  # as many as the operator's default workers
    async with httpx.AsyncClient(**tls_client_args(kubeconfig), timeout=30) as client:
        raw_policy = (
            await client.get(
                f"/apis/{constants.GROUP_VERSION}/namespaces/{station_ns}/stationpolicies/"
                f"{constants.STATION_POLICY_NAME}"
            )
        ).json()
        station_policy = StationPolicySpec.model_validate(raw_policy["spec"])
        trains_path = f"/apis/{constants.GROUP_VERSION}/namespaces/{station_ns}/trains"
        merge = {"Content-Type": "application/merge-patch+json"}

        async def start(body: dict[str, Any]) -> None:
            async with workers:
                await start_run(body)

        async def start_run(body: dict[str, Any]) -> None:
            meta = body["metadata"]
            spec = TrainSpec.model_validate(body["spec"])
            decision = evaluate(spec, station_policy)
            request = runobjects.RunRequest(
                uid=meta["uid"],
                namespace=station_ns,
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
            secret = runobjects.build_secret(request, os.urandom(16).hex(), settings)
            await client.post(f"/api/v1/namespaces/{run_ns}/secrets", json=secret)
            netpol = runobjects.build_network_policy(request, settings)
            await client.post(
                f"/apis/networking.k8s.io/v1/namespaces/{run_ns}/networkpolicies", json=netpol
            )
            job = runobjects.build_job(request, settings)
            created = await client.post(f"/apis/batch/v1/namespaces/{run_ns}/jobs", json=job)
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
            ready.write_text("ready")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                body = event.get("object") or {}
                if event.get("type") == "ADDED" and not body.get("status"):
                    task = asyncio.create_task(start(body))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)


# -- the two clusters ----------------------------------------------------------------------------


async def on_emulator(args: argparse.Namespace) -> tuple[Figures, Figures]:
    sides = (operator_side, baseline_side)
    results = []
    for side in sides:
        bed = EmulatorBed()
        async with bed.serving("pht-requests", "pht-runs") as kubeconfig:
            results.append(await side(bed, kubeconfig, "pht-requests", "pht-runs", args))
    return results[0], results[1]


async def on_real_cluster(args: argparse.Namespace) -> tuple[Figures, Figures]:
    from pht_sandbox.controlplane.binaries import locate
    from pht_sandbox.controlplane.cluster import ControlPlane

    plane = ControlPlane(Path(tempfile.mkdtemp(prefix="pht-bench-plane-")), locate(build=False))
    started = time.monotonic()
    await asyncio.to_thread(plane.start)
    print(f"  control plane up in {time.monotonic() - started:.0f} s", file=sys.stderr)
    try:
        bed = RealBed(plane)
        try:
            await bed.install_crds()
            results = []
            # Each side gets namespaces of its own; the other side's process is stopped by then.
            for tag, side in (("op", operator_side), ("base", baseline_side)):
                station_ns, run_ns = f"pht-requests-{tag}", f"pht-runs-{tag}"
                async with bed.serving(station_ns, run_ns) as kubeconfig:
                    results.append(await side(bed, kubeconfig, station_ns, run_ns, args))
            return results[0], results[1]
        finally:
            await bed.aclose()
    finally:
        await asyncio.to_thread(plane.remove)


def report(operator: Figures, baseline: Figures, cluster: str) -> None:
    def ms(value: float) -> str:
        return (
            "n/a" if math.isnan(value) else ("—" if math.isinf(value) else f"{value * 1000:.0f} ms")
        )

    def ratio(a: float, b: float) -> str:
        usable = b and not any(math.isnan(x) or math.isinf(x) for x in (a, b))
        return f"{a / b:.2f}×" if usable else "n/a"

    def count(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.2f}"

    rows = [("cluster", cluster, cluster, "")]
    for index in range(max(len(operator.steps), len(baseline.steps))):
        op = operator.steps[index] if index < len(operator.steps) else None
        base = baseline.steps[index] if index < len(baseline.steps) else None
        rate = (op or base).rate  # type: ignore[union-attr]

        def cell(step: Step | None) -> str:
            if step is None:
                return "not run"
            late = "" if step.complete else f" ({step.trains - len(step.latencies)} late)"
            return f"{ms(step.p50)} / {ms(step.p99)}{late}"

        rows.append(
            (
                f"create→Job p50 / p99 at {rate:g}/s ({(op or base).trains} Trains)",  # type: ignore[union-attr]
                cell(op),
                cell(base),
                ratio(op.p50, base.p50) if op and base else "",
            )
        )
    rows += [
        (
            "saturation throughput (p99 < 1 s)",
            f"{operator.saturation:g}/s",
            f"{baseline.saturation:g}/s",
            ratio(operator.saturation, baseline.saturation),
        ),
        (
            f"CPU s per Train ({operator.trains} / {baseline.trains} Trains)",
            f"{operator.cpu_per_train * 1000:.1f} ms",
            f"{baseline.cpu_per_train * 1000:.1f} ms",
            ratio(operator.cpu_per_train, baseline.cpu_per_train),
        ),
        (
            "API writes per Train to Job (excl. Events)",
            count(operator.writes_per_train),
            count(baseline.writes_per_train),
            ratio(operator.writes_per_train, baseline.writes_per_train),
        ),
        (
            "Events per Train",
            count(operator.events_per_train),
            count(baseline.events_per_train),
            "",
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
    print(f"{'':{width}}  {'operator':>22}  {'minimal client':>22}  {'ratio':>7}")
    for name, a, b, c in rows:
        print(f"{name:{width}}  {a:>22}  {b:>22}  {c:>7}")
    if operator.writes:
        print()
        print("operator writes by kind:", dict(sorted(operator.writes.items())))
        print("baseline writes by kind:", dict(sorted(baseline.writes.items())))


def rates(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v <= 0 or v > 200 for v in values) or values != sorted(values):
        raise argparse.ArgumentTypeError("rates must be increasing, each in (0, 200] per second")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", choices=("emulator", "real"), default="emulator")
    parser.add_argument("--rates", type=rates, default=[5.0, 10.0, 20.0, 40.0])
    parser.add_argument("--step-trains", type=int, default=60, help="Trains per ramp step")
    parser.add_argument("--step-timeout", type=float, default=60.0)
    parser.add_argument("--rss-trains", type=int, default=None, help="default 1000 / 300 (real)")
    parser.add_argument("--rss-rate", type=float, default=None, help="default 100 / 20 (real)")
    parser.add_argument("--rss-timeout", type=float, default=300.0)
    parser.add_argument("--baseline-client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_client:
        kubeconfig, ready, station_ns, run_ns = args.baseline_client
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(baseline_client(Path(kubeconfig), Path(ready), station_ns, run_ns))
        return 0
    if not 1 <= args.step_trains <= 1000:
        parser.error("--step-trains must be between 1 and 1000")
    real = args.cluster == "real"
    if args.rss_trains is None:
        args.rss_trains = 300 if real else 1000
    if args.rss_rate is None:
        args.rss_rate = 20.0 if real else 100.0
    if real:
        operator, baseline = asyncio.run(on_real_cluster(args))
    else:
        operator, baseline = asyncio.run(on_emulator(args))
    report(operator, baseline, args.cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
