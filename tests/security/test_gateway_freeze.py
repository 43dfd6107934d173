"""Attacker: trains that send queries which take rdflib's parser minutes, to freeze the API.

Against a real ``pht api`` process on 127.0.0.1: several trains flood the internal listener
with expensive query texts while the test measures how fast both listeners still answer.
Checking runs in killable worker processes under a deadline, one check per train at a time,
so the event loop serving both listeners stays free. The flood is bounded in requests and
time and stops by itself.
"""

import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import security_gateway_kit  # noqa: F401 (puts the station test helpers on the path)
from livestation import LiveStation, start_station
from stationkit import bearer, example_query, make_store, operator_headers, registration

from pht_contract.wire import SPARQL_PATH, TRAIN_REGISTRATION_PATH

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

KM = example_query("kaplan-meier")
#: About 60 KB of arithmetic chain: minutes of rdflib parsing, under the 64 KiB size limit.
EXPENSIVE = "SELECT * WHERE { ?s ?p ?o FILTER(?o = " + " + ".join(["1"] * 15_000) + ") }"
FLOOD_TRAINS = 3
REQUESTS_PER_TRAIN = 2
#: The longest either listener may take to answer during the flood (it stalled for minutes).
MAX_LATENCY_SECONDS = 2.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStation]:
    root = tmp_path_factory.mktemp("gateway-freeze")
    station = start_station(make_store(root / "store", patients=10), root / "state")
    try:
        yield station
    finally:
        station.stop()


def _register(live: LiveStation, token: str, **data_access: object) -> None:
    reg = registration(token, [KM], **data_access)
    httpx.put(
        live.internal + TRAIN_REGISTRATION_PATH.format(uid=reg.uid),
        json=reg.wire(),
        headers=operator_headers(),
    ).raise_for_status()


def test_a_parse_flood_leaves_both_listeners_responsive(live: LiveStation) -> None:
    assert len(EXPENSIVE.encode()) < 65536
    open_tokens = [f"flood-open-{i}" for i in range(FLOOD_TRAINS)]
    for token in open_tokens:
        _register(live, token, query_mode="AnyReadOnlyQuery")
    _register(live, "flood-approved")
    url = live.internal + SPARQL_PATH
    statuses: list[int] = []
    lock = threading.Lock()

    def flood(token: str) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(REQUESTS_PER_TRAIN):
                response = client.post(url, data={"query": EXPENSIVE}, headers=bearer(token))
                with lock:
                    statuses.append(response.status_code)

    workers = [threading.Thread(target=flood, args=(t,)) for t in [*open_tokens, "flood-approved"]]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    deadline = time.monotonic() + 12
    with httpx.Client(timeout=30) as probe:
        while time.monotonic() < deadline:
            for target in (live.external + "/healthz", live.internal + "/healthz"):
                started = time.perf_counter()
                assert probe.get(target).status_code == 200
                latencies.append(time.perf_counter() - started)
            time.sleep(0.1)
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers)
    assert max(latencies) < MAX_LATENCY_SECONDS, sorted(latencies)[-5:]
    assert statistics.median(latencies) < 0.5
    # Every flood request got a specific refusal: too complex, busy, or not approved.
    assert len(statuses) == (FLOOD_TRAINS + 1) * REQUESTS_PER_TRAIN
    assert set(statuses) <= {403, 422, 429}, statuses
    assert 422 in statuses
    # And the station still answers an approved query by name afterwards.
    answer = httpx.post(url, data={"query-name": "q0"}, headers=bearer("flood-approved"))
    assert answer.status_code == 200, answer.text


def test_sixty_four_kilobytes_in_approved_mode_cost_nothing(live: LiveStation) -> None:
    _register(live, "big-approved")
    started = time.perf_counter()
    response = httpx.post(
        live.internal + SPARQL_PATH,
        data={"query": EXPENSIVE},
        headers=bearer("big-approved"),
        timeout=30,
    )
    assert response.status_code == 403 and response.json()["reason"] == "QueryNotApproved"
    assert time.perf_counter() - started < MAX_LATENCY_SECONDS
