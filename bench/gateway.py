"""Benchmark: the SPARQL gateway versus pyoxigraph directly, and pyoxigraph versus rdflib.

Not a test: prints figures for docs/performance.md. In one run it

1. generates a 100,000-patient synthetic cohort and bulk-loads it (load time);
2. starts a real ``pht api`` process on that store, registers a train over HTTP and times a
   cohort aggregate and a 10,000-row SELECT through the gateway (HTTP, bearer token, policy
   check, killable worker, row cap, patient count, audit record), and the same query plus
   SPARQL JSON serialisation directly on pyoxigraph in this process, alternating the two
   sample by sample (p50/p99, throughput, gateway/direct ratio; the goal is ≤ 1.3×);
3. times the aggregate on rdflib's memory store versus pyoxigraph at 10,000 patients.

Run: ``.venv/bin/python bench/gateway.py [--patients 100000] [--repeat 30]``.
"""

import argparse
import io
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyoxigraph as ox
import rdflib

from pht_contract.hashing import canonical_json, sha256_hex, token_hash
from pht_contract.policies import DataAccessPolicy, StationPolicySpec
from pht_contract.sparql import query_hash
from pht_contract.wire import (
    SPARQL_PATH,
    TRAIN_REGISTRATION_PATH,
    ApprovedQuery,
    TrainRegistration,
)
from pht_station_api.cohorts import cohort_bytes
from pht_station_api.triplestores.loading import load_rdf

GRAPH = "urn:pht:graph:lung1"
PREFIXES = (
    "PREFIX roo: <http://www.cancerdata.org/roo/>\n"
    "PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#>\n"
)
AGGREGATE = PREFIXES + (
    "SELECT ?stage (COUNT(?patient) AS ?patients) WHERE {\n"
    "  ?patient a ncit:C16960 ; roo:P100029 ?tumour .\n"
    "  ?tumour roo:P100219 ?stage .\n"
    "} GROUP BY ?stage ORDER BY ?stage"
)
ROWS_10K = PREFIXES + (
    "SELECT ?patient ?stage ?days ?dead WHERE {\n"
    "  ?patient a ncit:C16960 ; roo:P100029 ?tumour ; roo:P100311 ?survival ;\n"
    "           roo:P100254 ?death .\n"
    "  ?tumour roo:P100219 ?stage .\n"
    "  ?survival roo:P100042 ?days .\n"
    "  ?death roo:P100042 ?dead .\n"
    "} LIMIT 10000"
)
OPERATOR_TOKEN = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(fn: Callable[[], object], repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def timed_pair(
    first: Callable[[], object], second: Callable[[], object], repeat: int, warmup: int = 3
) -> tuple[list[float], list[float]]:
    """Alternate the two paths sample by sample, so background load hits both alike."""
    for _ in range(warmup):
        first()
        second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, into in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            fn()
            into.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
        "per_s": len(ordered) / sum(ordered),
    }


def start_api(store: Path, state: Path) -> tuple[subprocess.Popen[bytes], str]:
    token_file = state / "operator-token"
    state.mkdir(parents=True, exist_ok=True)
    token_file.write_text(OPERATOR_TOKEN)
    internal, external = free_port(), free_port()
    env = {**os.environ, "PHT_API_QUERY_WORKERS": "2", "PHT_API_IDENTITY_MODE": "kubernetes"}
    log = (state / "api.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "pht_cli.main", "api", "--store", str(store),
            "--state-dir", str(state), "--host", "127.0.0.1",
            "--internal-port", str(internal), "--external-port", str(external),
            "--operator-token-file", str(token_file), "--station-name", "bench",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{internal}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("pht api did not become ready; see " + str(state / "api.log"))


def register(base: str, token: str) -> None:
    policy = StationPolicySpec(
        organisations=["bench"],
        data_access=DataAccessPolicy(
            allowed_graphs=[GRAPH],
            query_mode="ApprovedQueriesOnly",
            row_cap=10_000,
            queries_per_minute=100_000,
            query_timeout_seconds=60,
        ),
    )
    registration = TrainRegistration(
        uid="bench-train",
        namespace="bench",
        name="bench",
        spec_hash="0" * 64,
        image="bench/train:1",
        token_hash=token_hash(token),
        approved_query_hashes=[query_hash(AGGREGATE), query_hash(ROWS_10K)],
        approved_queries=[
            ApprovedQuery(name=name, sparql=text, hash=query_hash(text))
            for name, text in (("aggregate", AGGREGATE), ("rows", ROWS_10K))
        ],
        allowed_graphs=[GRAPH],
        policy=policy,
        policy_hash=sha256_hex(canonical_json(policy.wire())),
        requester_name="Bench",
        requester_organisation="bench",
        expires_at=(datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    response = httpx.put(
        base + TRAIN_REGISTRATION_PATH.format(uid=registration.uid),
        json=registration.wire(),
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    response.raise_for_status()


def direct_query(store: ox.Store, query: str) -> bytes:
    result = store.query(
        query, default_graph=[ox.NamedNode(GRAPH)], named_graphs=[ox.NamedNode(GRAPH)]
    )
    assert isinstance(result, ox.QuerySolutions)
    return result.serialize(format=ox.QueryResultsFormat.JSON) or b""


def directly(store: ox.Store, query: str) -> Callable[[], bytes]:
    return lambda: direct_query(store, query)


def compare_gateway(patients: int, repeat: int, workdir: Path) -> None:
    print(f"generating {patients:,} patients …", flush=True)
    start = time.perf_counter()
    data = cohort_bytes(patients, seed=1)
    generated = time.perf_counter() - start
    store_dir = workdir / "store"
    start = time.perf_counter()
    quads = load_rdf(store_dir, io.BytesIO(data), "ntriples", GRAPH)
    loaded = time.perf_counter() - start
    del data
    print(f"generate: {generated:.1f} s; bulk load: {loaded:.1f} s ({quads:,} triples)")

    process, base = start_api(store_dir, workdir / "state")
    try:
        token = secrets.token_urlsafe(24)
        register(base, token)
        direct_store = ox.Store.read_only(str(store_dir))
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/sparql-results+json"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:

            def via_gateway(query: str) -> Callable[[], bytes]:
                def call() -> bytes:
                    response = client.post(SPARQL_PATH, data={"query": query})
                    response.raise_for_status()
                    return response.content

                return call

            rows = len(
                httpx.Response(200, content=via_gateway(ROWS_10K)()).json()["results"]["bindings"]
            )
            assert rows == min(10_000, patients), rows
            print(f"\n{'query':<22}{'path':<10}{'p50 ms':>9}{'p99 ms':>9}{'q/s':>8}{'ratio':>8}")
            for name, query in (("cohort aggregate", AGGREGATE), ("10,000-row SELECT", ROWS_10K)):
                direct_samples, gateway_samples = timed_pair(
                    directly(direct_store, query), via_gateway(query), repeat
                )
                direct, gateway = summary(direct_samples), summary(gateway_samples)
                ratio = gateway["p50_ms"] / direct["p50_ms"]
                for path, figures, shown in (
                    ("direct", direct, ""),
                    ("gateway", gateway, f"{ratio:.2f}×"),
                ):
                    print(
                        f"{name:<22}{path:<10}{figures['p50_ms']:>9.1f}{figures['p99_ms']:>9.1f}"
                        f"{figures['per_s']:>8.1f}{shown:>8}"
                    )
    finally:
        process.terminate()
        process.wait(timeout=30)


def compare_rdflib(patients: int, repeat: int) -> None:
    data = cohort_bytes(patients, seed=1)
    store = ox.Store()
    store.bulk_load(io.BytesIO(data), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(GRAPH))
    graph = rdflib.Graph()
    start = time.perf_counter()
    graph.parse(data=data.decode(), format="nt")
    parse_s = time.perf_counter() - start
    plain = AGGREGATE
    oxi = summary(timed(lambda: direct_query(store, plain), repeat))

    def with_rdflib() -> object:
        return graph.query(plain).serialize(format="json")

    rdf = summary(timed(with_rdflib, max(3, repeat // 5), 1))
    print(
        f"\nat {patients:,} patients: rdflib parse {parse_s:.1f} s; cohort aggregate p50 "
        f"pyoxigraph {oxi['p50_ms']:.1f} ms, rdflib memory store {rdf['p50_ms']:.1f} ms "
        f"({rdf['p50_ms'] / oxi['p50_ms']:.0f}× slower)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--rdflib-patients", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    version = getattr(ox, "__version__", "?")
    print(
        f"python {sys.version.split()[0]}, pyoxigraph {version}, rdflib {rdflib.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="pht-bench-") as tmp:
        compare_gateway(args.patients, args.repeat, Path(tmp))
    compare_rdflib(args.rdflib_patients, args.repeat)


if __name__ == "__main__":
    main()
