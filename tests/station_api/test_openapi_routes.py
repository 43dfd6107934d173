"""Every route says what it answers: a response model, or a documented non-JSON body.

Walks the routes of the three listeners. A JSON answer must have a pydantic response model
(not a bare ``dict``), a refusal must name the shared error body, and the few routes that
answer something other than JSON are listed here by name, with the reason.
"""

import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from pht_station_api.app import create_external_app, create_internal_app, create_metrics_app
from pht_station_api.responses import ErrorBody
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

Responses = dict[int | str, dict[str, Any]]

RDF_RECORD = "an FDP record as RDF, in the serialisation the client negotiates"
NOT_JSON: dict[str, str] = {
    "fdp_root": RDF_RECORD,
    "catalogs": RDF_RECORD,
    "catalog": RDF_RECORD,
    "datasets": RDF_RECORD,
    "dataset": RDF_RECORD,
    "distributions": RDF_RECORD,
    "distribution": RDF_RECORD,
    "sparql_get": "SPARQL results in the negotiated format (JSON, XML, CSV or TSV)",
    "sparql_post": "SPARQL results in the negotiated format (JSON, XML, CSV or TSV)",
    "metrics": "the Prometheus text exposition format",
    "download_table": "a file download: one released table as CSV",
}


def apps(station: StationState) -> list[FastAPI]:
    return [
        create_internal_app(station),
        create_external_app(station),
        create_metrics_app(station),
    ]


def walk(routes: Sequence[BaseRoute], inherited: Responses) -> Iterator[tuple[APIRoute, Responses]]:
    """Every API route below ``routes`` (into included routers) with the responses it documents:
    its own and those its routers add to every route."""
    for route in routes:
        if isinstance(route, APIRoute):
            if not route.include_in_schema:
                # The steward console's HTML pages, and nothing else, stay out of the API.
                assert route.path.startswith("/console"), route.path
                continue
            yield route, {**inherited, **route.responses}
            continue
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from walk(included.routes, {**inherited, **included.responses})


def api_routes(app: FastAPI) -> list[tuple[APIRoute, Responses]]:
    return list(walk(app.routes, {}))


def routes(station: StationState) -> list[tuple[APIRoute, Responses]]:
    return [found for app in apps(station) for found in api_routes(app)]


def described(route: APIRoute, responses: Responses) -> list[str]:
    """What is wrong with how this route documents its answers (nothing when all is well)."""
    problems: list[str] = []
    if route.name in NOT_JSON:
        content = responses.get(200, {}).get("content")
        if not content:
            problems.append("answers something other than JSON but documents no media type")
    elif route.status_code == 204:
        if route.response_model is not None:
            problems.append("answers 204 (no body) but declares a body")
    else:
        model = route.response_model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            problems.append(f"has no pydantic response model (it has {model!r})")
    for status, response in responses.items():
        if int(status) >= 400 and response.get("model") is not ErrorBody:
            problems.append(f"documents refusal {status} without the error body")
    return problems


async def test_every_route_describes_its_answers(station: StationState) -> None:
    found = {
        f"{sorted(r.methods)} {r.path} ({r.name})": described(r, d) for r, d in routes(station)
    }
    # The walk itself must find the routes, or the check above proves nothing.
    assert len(found) >= 25
    assert {route: problems for route, problems in found.items() if problems} == {}


async def test_the_exceptions_are_real_routes(station: StationState) -> None:
    """A route renamed away from the list must not keep an exception it no longer needs."""
    names = {route.name for route, _ in routes(station)}
    assert set(NOT_JSON) <= names


async def test_the_openapi_documents_name_a_schema_for_every_json_answer(
    station: StationState,
) -> None:
    missing = []
    for app in apps(station):
        document: dict[str, Any] = app.openapi()
        for route, _ in api_routes(app):
            if route.name in NOT_JSON:
                continue
            for method in route.methods:
                answers = document["paths"][route.path][method.lower()]["responses"]
                for status, answer in answers.items():
                    schema = answer.get("content", {}).get("application/json", {}).get("schema")
                    if status != "204" and not schema:
                        missing.append(f"{method} {route.path} {status}")
    assert missing == []


async def test_every_listener_reports_the_version_pyproject_declares(
    station: StationState,
) -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["version"]
    assert {app.openapi()["info"]["version"] for app in apps(station)} == {declared}
