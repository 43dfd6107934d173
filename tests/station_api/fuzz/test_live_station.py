"""``pht api --store DIR`` end to end over real HTTP: FDP, a registered train's answers, refusals.

What a newcomer would do by hand with curl, against the real process on localhost.
"""

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from livestation import METRICS_TOKEN, LiveStation, start_station
from rdflib import Graph, Namespace
from stationkit import (
    OPERATOR_TOKEN,
    bearer,
    example_query,
    make_store,
    operator_headers,
    registration,
)

from pht_contract.wire import SPARQL_PATH, TRAIN_REGISTRATION_PATH

pytestmark = [pytest.mark.slow]

FDP = Namespace("https://w3id.org/fdp/fdp-o#")
KM = example_query("kaplan-meier")
PATIENTS = 25


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStation]:
    root = tmp_path_factory.mktemp("live-e2e")
    station = start_station(make_store(root / "store", patients=PATIENTS), root / "state")
    try:
        yield station
    finally:
        station.stop()


def test_fdp_root_is_turtle_and_links_the_catalog(live: LiveStation) -> None:
    response = httpx.get(live.external + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=response.text, format="turtle")
    catalog = next(graph.objects(None, FDP.metadataCatalog), None)
    assert catalog is not None and str(catalog).startswith(live.external)
    assert httpx.get(str(catalog)).status_code == 200


def test_registered_train_gets_json_and_csv_and_refusals(live: LiveStation) -> None:
    token = "live-e2e-token"
    reg = registration(token, [KM])
    put = httpx.put(
        live.internal + TRAIN_REGISTRATION_PATH.format(uid=reg.uid),
        json=reg.wire(),
        headers=operator_headers(),
    )
    assert put.status_code == 201
    url = live.internal + SPARQL_PATH
    as_json = httpx.get(url, params={"query": KM}, headers=bearer(token))
    assert as_json.status_code == 200
    assert len(as_json.json()["results"]["bindings"]) == PATIENTS
    as_csv = httpx.post(url, data={"query": KM}, headers={**bearer(token), "Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["patient", "stage", "days", "dead"] and len(rows) == PATIENTS + 1
    # Approved-queries mode never parses a train's own text: anything else is not approved.
    unapproved = httpx.post(url, data={"query": "CLEAR ALL"}, headers=bearer(token))
    assert unapproved.status_code == 403 and unapproved.json()["reason"] == "QueryNotApproved"
    open_token = "live-e2e-open-token"
    open_reg = registration(open_token, [KM], query_mode="AnyReadOnlyQuery")
    httpx.put(
        live.internal + TRAIN_REGISTRATION_PATH.format(uid=open_reg.uid),
        json=open_reg.wire(),
        headers=operator_headers(),
    ).raise_for_status()
    for query, reason in (
        ("CLEAR ALL", "UpdateRefused"),
        ("SELECT * WHERE { SERVICE <http://x/> { ?s ?p ?o } }", "ServiceRefused"),
        ("SELECT * FROM <urn:pht:graph:secret> WHERE { ?s ?p ?o }", "GraphNotAllowed"),
    ):
        refused = httpx.post(url, data={"query": query}, headers=bearer(open_token))
        assert refused.status_code == 403 and refused.json()["reason"] == reason
    metrics = httpx.get(live.metrics + "/metrics", headers=bearer(METRICS_TOKEN)).text
    assert 'pht_gateway_queries_total{outcome="refused",station=' in metrics
    assert "ServiceRefused" not in metrics  # the reason is audited, never a label


def test_pht_load_through_the_running_api(live: LiveStation, tmp_path: Path) -> None:
    from pht_cli.main import main
    from pht_station_api.cohorts import cohort_bytes

    extra = tmp_path / "extra.nt"
    extra.write_bytes(cohort_bytes(4, seed=11, hospital=3))
    token_file = tmp_path / "operator-token"
    token_file.write_text(OPERATOR_TOKEN)
    # Directly into the store the API holds: refused (never two writers).
    assert main(["load", str(extra), "--store", str(live.store)]) == 1
    assert (
        main(["load", str(extra), "--api", live.internal, "--operator-token-file", str(token_file)])
        == 0
    )
    count = (
        "PREFIX ncit: <http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#> "
        "SELECT (COUNT(?p) AS ?n) WHERE { ?p a ncit:C16960 }"
    )
    token = "live-load-token"
    reg = registration(token, query_mode="AnyReadOnlyQuery")
    httpx.put(
        live.internal + TRAIN_REGISTRATION_PATH.format(uid=reg.uid),
        json=reg.wire(),
        headers=operator_headers(),
    ).raise_for_status()
    answer = httpx.get(live.internal + SPARQL_PATH, params={"query": count}, headers=bearer(token))
    assert int(answer.json()["results"]["bindings"][0]["n"]["value"]) == PATIENTS + 4


def test_sigterm_stops_every_listener_cleanly(tmp_path: Path) -> None:
    station = start_station(make_store(tmp_path / "store", patients=3), tmp_path / "state")
    assert station.stop() == 0
    log = (tmp_path / "state" / "pht-api.log").read_text()
    # internal, external and metrics
    assert log.count("Finished server process") == 3
