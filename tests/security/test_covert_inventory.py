"""Every value a train can move and someone outside reads is in the covert-channel inventory.

The inventory (``pht_contract.covertchannels``) bounds what a run can signal; these tests walk
what the station really exposes — the Train CRD's status schema, the Event the operator builds
and the actions it posts them for, the external listener's routes and the headers of a real
download, and both metrics registries after a real run through a real station — and fail on
anything new that has no bound yet, or on an entry for something that is gone.
"""

from __future__ import annotations

import ast
import csv
import io
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from fastapi.routing import APIRoute
from security_channels_kit import bearer, make_store  # puts stationkit on the path
from starlette.routing import Mount, Route
from stationkit import (
    COHORT_PATIENTS,
    STEWARD_TOKEN,
    client_for,
    example_query,
    operator_headers,
    register,
    started_station,
    station_settings,
)

from pht_contract.covertchannels import (
    GATE_RULES,
    INVENTORY,
    MAX_RETRIES,
    MAX_UPLOADS,
    PROGRESS_PERCENT_STEP,
    QUERY_DURATION_BUCKETS,
    ROW_BUCKETS,
    RUN_BUCKETS,
    Channel,
    Reader,
    RunLimits,
    Surface,
    channels,
)
from pht_contract.times import RESEARCHER_TIME_STEP_SECONDS
from pht_contract.trainfailures import TRAIN_FAILURE_REASONS
from pht_contract.wire import RESULT_PATH, SPARQL_PATH, TRAIN_COMPLETION_PATH
from pht_operator import events as operator_events
from pht_operator import metrics as operator_metrics
from pht_station_api import metrics as api_metrics
from pht_station_api import registry as api_registry
from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.disclosure.decisions import Rule
from pht_station_api.results import archive as api_archive
from pht_station_api.settings import Settings
from pht_station_api.state import StationState

pytestmark = pytest.mark.timeout(180)
ON_THE_STATION = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]
OPERATOR_SOURCES = REPO / "operator" / "pht_operator"
KM = example_query("kaplan-meier")
STAGES = ["I", "II", "IIIa", "IIIb"]


def _add_it(surface: Surface, names: Iterable[str]) -> str:
    return (
        f"not in the covert-channel inventory ({surface.value}): {sorted(names)}; add each to "
        "pht_contract.covertchannels with its bound in bits per run (choices a train has, how "
        "often per run; 1 choice if the train cannot influence it)"
    )


def _stale(surface: Surface, names: Iterable[str]) -> str:
    return (
        f"in the covert-channel inventory ({surface.value}) but no longer exposed: "
        f"{sorted(names)}; remove them"
    )


def _assert_same(surface: Surface, exposed: set[str], listed: set[str]) -> None:
    assert not exposed - listed, _add_it(surface, exposed - listed)
    assert not listed - exposed, _stale(surface, listed - exposed)


# --- the Train's status ------------------------------------------------------------------------


def _schema_paths(schema: dict[str, Any], path: str) -> Iterator[str]:
    if schema.get("type") == "array":
        yield from _schema_paths(schema.get("items", {}), path + "[]")
    elif schema.get("properties"):
        for key, child in schema["properties"].items():
            yield from _schema_paths(child, f"{path}.{key}")
    else:
        yield path


def _train_crd_status() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / "trains.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    status: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return status


def test_every_status_field_of_the_train_crd_has_a_bound() -> None:
    exposed = set(_schema_paths(_train_crd_status(), "status"))
    assert "status.conditions[].lastTransitionTime" in exposed  # the walk reaches list items
    _assert_same(Surface.TRAIN_STATUS, exposed, set(channels(Surface.TRAIN_STATUS)))


def test_the_chart_ships_the_same_train_crd() -> None:
    chart = REPO / "charts" / "pht-station" / "crds" / "trains.yaml"
    assert yaml.safe_load(chart.read_text()) == yaml.safe_load(
        (REPO / "crds" / "trains.yaml").read_text()
    )


# --- Events ------------------------------------------------------------------------------------


def _leaf_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaf_paths(child, f"{path}.{key}" if path else key)
    else:
        yield path


def _event_actions() -> set[str]:
    """``action=`` of every call of the operator's ``event(...)`` helper, from its source."""
    actions: set[str] = set()
    for source in OPERATOR_SOURCES.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "event"):
                continue
            (action,) = [k.value for k in node.keywords if k.arg == "action"]
            assert isinstance(action, ast.Constant), f"{source.name}: action must be a literal"
            actions.add(f"action:{action.value}")
    return actions


def test_every_field_of_an_operator_event_has_a_bound() -> None:
    train = {
        "apiVersion": "pht.example/v1",
        "kind": "Train",
        "metadata": {"name": "km", "namespace": "research", "uid": "u-1"},
    }
    event = operator_events.build_event(train, "Normal", "RunCompleted", "the run finished", "X")
    exposed = set(_leaf_paths(event))
    listed = {name for name in channels(Surface.TRAIN_EVENT) if not name.startswith("action:")}
    _assert_same(Surface.TRAIN_EVENT, exposed, listed)


def test_every_event_the_operator_posts_has_a_bound() -> None:
    exposed = _event_actions()
    assert "action:Finish" in exposed  # the source walk finds the calls
    listed = {name for name in channels(Surface.TRAIN_EVENT) if name.startswith("action:")}
    _assert_same(Surface.TRAIN_EVENT, exposed, listed)


# --- a real station: routes, download headers, metrics -----------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StationState]:
    root: Path = tmp_path_factory.mktemp("covert-inventory")
    settings = station_settings(make_store(root / "store"), root / "state")
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def downloads(station: StationState) -> list[httpx.Response]:
    """One run end to end (query, upload, completion, a steward's release), then downloads."""
    async with (
        client_for(create_internal_app(station), "http://internal.test") as inside,
        client_for(create_external_app(station), "http://fdp.test") as outside,
    ):
        token, reg = await register(inside, [KM])
        answered = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
        assert answered.status_code == 200, answered.text
        refused = await inside.post(SPARQL_PATH, data={"query": "CLEAR ALL"}, headers=bearer(token))
        assert refused.status_code == 403
        counts = [COHORT_PATIENTS - 30, 10, 10, 10]
        table = {
            "name": "stages",
            "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
            "rows": [[STAGES[i], c] for i, c in enumerate(counts)],
            "cohortSize": sum(counts),
        }
        uploaded = await inside.put(RESULT_PATH, json={"tables": [table]}, headers=bearer(token))
        assert uploaded.status_code == 201, uploaded.text
        done = await inside.put(
            TRAIN_COMPLETION_PATH.format(uid=reg.uid),
            json={"jobSucceeded": True, "reason": "RunCompleted"},
            headers=operator_headers(),
        )
        assert done.status_code == 200, done.text
        url = f"/results/{reg.namespace}/{reg.name}"
        early = await outside.get(url, headers=bearer(STEWARD_TOKEN))
        assert (early.status_code, early.json()["reason"]) == (404, "NotReleased")
        released = await outside.post(
            f"/stewards/results/{reg.namespace}/{reg.name}/decision",
            json={"decision": "Release", "reason": "reviewed"},
            headers=bearer(STEWARD_TOKEN),
        )
        assert released.status_code == 200, released.text
        as_json = await outside.get(url, headers=bearer(STEWARD_TOKEN))
        as_csv = await outside.get(url + "/tables/stages", headers=bearer(STEWARD_TOKEN))
        assert (as_json.status_code, as_csv.status_code) == (200, 200), as_csv.text
        assert next(csv.reader(io.StringIO(as_csv.text))) == ["stage", "n"]
        assert (await outside.get("/readyz")).status_code == 200
        return [early, as_json, as_csv]


def _route_names(app: Any) -> set[str]:
    """``METHOD path`` of every operation (from the OpenAPI document), every page outside it
    (the steward console's, in included routers too) and every mounted directory."""
    names = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            pending.extend(included.routes)
        elif isinstance(route, APIRoute):
            if not route.include_in_schema:
                names.update(f"{method} {route.path}" for method in route.methods or ())
        elif (isinstance(route, Route) and route.path) or isinstance(route, Mount):
            names.add(f"GET {route.path}")
    return names


def _listed_routes() -> set[str]:
    return {
        name
        for name in channels(Surface.EXTERNAL_ROUTE)
        if name.split(" ")[0] in {"GET", "POST", "PUT", "DELETE", "PATCH"}
    }


def test_every_route_of_the_external_listener_has_a_bound() -> None:
    settings = Settings.model_construct()  # every setting at its default, nothing read
    app = create_external_app(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    exposed = _route_names(app)
    assert "GET /results/{namespace}/{name}" in exposed
    assert "POST /console/results/{namespace}/{name}" in exposed  # the walk finds the console
    _assert_same(Surface.EXTERNAL_ROUTE, exposed, _listed_routes())


@ON_THE_STATION
async def test_every_header_of_a_download_has_a_bound(downloads: list[httpx.Response]) -> None:
    exposed = {f"header:{name.lower()}" for response in downloads for name in response.headers}
    listed = {name for name in channels(Surface.EXTERNAL_ROUTE) if name.startswith("header:")}
    _assert_same(Surface.EXTERNAL_ROUTE, exposed, listed)


def _families(collector: Any) -> dict[str, set[str]]:
    """Family name → label names (``le`` aside), as a scraper receives them."""
    found: dict[str, set[str]] = {}
    for family in collector.collect():
        labels = found.setdefault(family.name, set())
        for sample in family.samples:
            assert not sample.name.endswith("_created"), sample.name
            labels.update(key for key in sample.labels if key != "le")
    return found


def _assert_metrics(surface: Surface, exposed: dict[str, set[str]]) -> None:
    listed = channels(surface)
    _assert_same(surface, set(exposed), set(listed))
    for name, labels in exposed.items():
        assert labels == set(listed[name].labels), (
            f"{name} now has labels {sorted(labels)}: every label a train can pick multiplies "
            "what it can signal; update its bound in pht_contract.covertchannels"
        )


@ON_THE_STATION
async def test_every_series_of_the_station_api_has_a_bound(
    station: StationState, downloads: list[httpx.Response]
) -> None:
    assert downloads
    exposed = _families(api_metrics.WithoutCreatedSeries(station.metrics.registry))
    assert "pht_uploads" in exposed and "pht_disclosure_decisions" in exposed
    _assert_metrics(Surface.STATION_API_METRIC, exposed)


def test_every_series_of_the_operator_has_a_bound() -> None:
    metrics = operator_metrics.OperatorMetrics("covert")
    metrics.admission("Admitted", "Admitted")
    metrics.finish("Succeeded", "ResultReleased")
    metrics.gpu("maastro", ["maastro"], 60.0)
    for histogram in (
        metrics.admission_latency,
        metrics.run_start_latency,
        metrics.approval_wait,
        metrics.queue_wait,
        metrics.run_duration,
        metrics.turnaround,
    ):
        histogram.observe(1.0)
    metrics.reconcile_errors.inc()
    metrics.last_watch_event.set(1.0)
    metrics.count_trains(["Running"])
    exposed = _families(operator_metrics.WithoutCreatedSeries(metrics.registry))
    _assert_metrics(Surface.OPERATOR_METRIC, exposed)


# --- the inventory's own arithmetic and the limits it relies on --------------------------------


def test_the_limits_the_inventory_relies_on_match_their_sources() -> None:
    retries = yaml.safe_load((REPO / "crds" / "trains.yaml").read_text())["spec"]["versions"][0]
    spec = retries["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["retries"]["maximum"] == MAX_RETRIES
    assert MAX_UPLOADS == api_archive.MAX_UPLOADS
    assert len(Rule) == GATE_RULES
    assert PROGRESS_PERCENT_STEP == api_registry.PROGRESS_PERCENT_STEP
    assert len(api_metrics.QUERY_DURATION_BUCKETS) == QUERY_DURATION_BUCKETS
    assert len(api_metrics.ROW_BUCKETS) == ROW_BUCKETS
    assert len(operator_metrics.RUN_BUCKETS) == RUN_BUCKETS
    defaults = RunLimits()
    assert defaults.time_step_seconds == RESEARCHER_TIME_STEP_SECONDS
    fields = Settings.model_fields
    assert defaults.progress_tick_seconds == fields["progress_tick_seconds"].default
    assert defaults.metrics_tick_seconds == fields["metrics_snapshot_seconds"].default


def test_a_bound_is_times_log2_choices_and_nothing_for_no_choice() -> None:
    limits = RunLimits(run_seconds=3600)
    fixed = channels(Surface.TRAIN_STATUS)["status.specHash"]
    assert fixed.bits(limits) == 0.0
    two_of_three = Channel(
        Surface.EXTERNAL_ROUTE, "x", Reader.PUBLIC, lambda _: 4, lambda _: 3, "test"
    )
    assert two_of_three.bits(limits) == 6.0
    # Whole minutes: a one-hour run ends at one of 61 visible moments, not 3601.
    completion = channels(Surface.TRAIN_STATUS)["status.completionTime"]
    assert completion.bits(limits) == pytest.approx(math.log2(61))
    exact = channels(Surface.API_SERVER)["Train metadata.managedFields[].time"]
    assert exact.bits(limits) == pytest.approx(math.log2(3601))


def test_a_failed_trains_reason_is_counted_in_the_condition_message_and_the_event_note() -> None:
    # The reason a train gives is shown only as one of the listed words, UnlistedReason, or not
    # at all (pht_contract.trainfailures): each message and note multiplies by that many.
    limits = RunLimits()
    without_reason = (GATE_RULES + 1) * (MAX_RETRIES + 2)
    with_reason = without_reason * (len(TRAIN_FAILURE_REASONS) + 2)
    message = channels(Surface.TRAIN_STATUS)["status.conditions[].message"]
    note = channels(Surface.TRAIN_EVENT)["note"]
    for channel in (message, note):
        assert channel.choices(limits) == with_reason
        assert channel.bits(limits) == pytest.approx(math.log2(with_reason))
    assert "TRAIN_FAILURE_REASONS" in message.why and "UnlistedReason" in message.why
    # The operator reads a pod's termination message only through the mapping.
    readers = {
        source.name: source.read_text()
        for source in OPERATOR_SOURCES.glob("*.py")
        if '"terminated"' in source.read_text()
    }
    assert "jobstates.py" in readers, sorted(readers)
    for name, text in readers.items():
        assert "shown_reason(" in text, f"{name} reads termination messages unmapped"


def test_names_are_unique_per_surface() -> None:
    seen = [(channel.surface, channel.name) for channel in INVENTORY]
    assert len(seen) == len(set(seen))
    assert all(channel.why for channel in INVENTORY)


def test_a_new_or_a_vanished_value_fails_with_what_to_do() -> None:
    listed = set(channels(Surface.TRAIN_STATUS))
    with pytest.raises(AssertionError, match=r"add each to pht_contract\.covertchannels"):
        _assert_same(Surface.TRAIN_STATUS, listed | {"status.newField"}, listed)
    with pytest.raises(AssertionError, match="no longer exposed"):
        _assert_same(Surface.TRAIN_STATUS, listed - {"status.summary"}, listed)
