"""FAIR Data Point 1.2 on the external listener: Turtle by default, JSON-LD and N-Triples.

The records are rebuilt per request from live figures (cached by the store until it changes),
so the triple count and last modification are always current.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request, Response
from rdflib import Graph, URIRef

from pht_contract.times import utc_now
from pht_station_api import fairmetadata as fm
from pht_station_api.deps import StateDep
from pht_station_api.errors import NotAcceptable, NotFound
from pht_station_api.gateway.formats import parse_accept
from pht_station_api.responses import refusal
from pht_station_api.state import StationState
from pht_station_api.triplestores.loading import DEFAULT_GRAPH

router = APIRouter(tags=["fair-data-point"])

RDF_TYPES: Final = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
}
_RESPONSES: Final[dict[int | str, dict[str, object]]] = {
    200: {"content": {media: {} for media in RDF_TYPES}, "description": "An FDP record"},
    404: refusal("NotFound"),
    406: refusal("NotAcceptable"),
}


def _issued(state: StationState) -> datetime:
    """When this station first published its metadata: fixed at first start, then stable."""
    path: Path = state.settings.state_dir / "fdp-issued"
    try:
        return datetime.fromisoformat(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        now = utc_now().replace(microsecond=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(now.isoformat(), encoding="utf-8")
        return now


def offered_graphs(state: StationState) -> tuple[str, ...]:
    if state.policy is not None:
        return tuple(state.policy.data_access.allowed_graphs)
    return (DEFAULT_GRAPH,)


async def describe(state: StationState) -> fm.StationDescription:
    datasets = []
    for graph in offered_graphs(state):
        figures = await state.store.statistics((graph,))
        modified = (
            datetime.fromtimestamp(figures.last_modified, UTC)
            if figures.last_modified is not None
            else None
        )
        datasets.append(fm.DatasetFigures(graph, figures.triples, modified))
    settings = state.settings
    title = (state.policy.display_name if state.policy else None) or settings.station_name
    return fm.StationDescription(
        base_url=settings.public_base_url,
        sparql_base_url=settings.internal_base_url.rstrip("/"),
        station_name=settings.station_name,
        title=title,
        issued=_issued(state),
        datasets=tuple(datasets),
    )


def _render(request: Request, graph: Graph) -> Response:
    for media, _ in parse_accept(request.headers.get("accept")):
        fmt = RDF_TYPES.get(media)
        if fmt is None and media in ("*/*", "text/*"):
            media, fmt = "text/turtle", "turtle"
        if fmt is not None:
            body = graph.serialize(format=fmt)
            return Response(
                body,
                media_type=media,
                headers={"Link": '<http://www.w3.org/ns/ldp#Resource>; rel="type"'},
            )
    raise NotAcceptable("offered: " + ", ".join(RDF_TYPES))


def _only(graph: Graph, subject: URIRef) -> Graph:
    part = Graph(namespace_manager=graph.namespace_manager)
    for triple in graph.triples((subject, None, None)):
        part.add(triple)
    return part


@router.get("/", responses=_RESPONSES, response_class=Response)
async def fdp_root(request: Request, state: StateDep) -> Response:
    """The FAIR Data Point record (FDP 1.2)."""
    return _render(request, fm.fdp_record(await describe(state)))


@router.get("/catalog/", responses=_RESPONSES, response_class=Response)
async def catalogs(request: Request, state: StateDep) -> Response:
    """LDP container of the catalogs."""
    station = await describe(state)
    return _render(
        request, _only(fm.fdp_record(station), fm.Urls(station.base_url).container("catalog"))
    )


@router.get("/catalog/{catalog_id}", responses=_RESPONSES, response_class=Response)
async def catalog(catalog_id: str, request: Request, state: StateDep) -> Response:
    """The station's catalog."""
    if catalog_id != fm.CATALOG_ID:
        raise NotFound("no such catalog")
    return _render(request, fm.catalog_record(await describe(state)))


@router.get("/catalog/{catalog_id}/dataset/", responses=_RESPONSES, response_class=Response)
async def datasets(catalog_id: str, request: Request, state: StateDep) -> Response:
    """LDP container of the catalog's datasets."""
    if catalog_id != fm.CATALOG_ID:
        raise NotFound("no such catalog")
    station = await describe(state)
    urls = fm.Urls(station.base_url)
    container = urls.container("dataset", str(urls.catalog()))
    return _render(request, _only(fm.catalog_record(station), container))


@router.get("/dataset/{name}", responses=_RESPONSES, response_class=Response)
async def dataset(name: str, request: Request, state: StateDep) -> Response:
    """A dataset: one named graph of the data store, with live figures."""
    graph = fm.dataset_record(await describe(state), name)
    if graph is None:
        raise NotFound("no such dataset")
    return _render(request, graph)


@router.get("/dataset/{name}/distribution/", responses=_RESPONSES, response_class=Response)
async def distributions(name: str, request: Request, state: StateDep) -> Response:
    """LDP container of a dataset's distributions."""
    station = await describe(state)
    graph = fm.dataset_record(station, name)
    if graph is None:
        raise NotFound("no such dataset")
    urls = fm.Urls(station.base_url)
    return _render(request, _only(graph, urls.container("distribution", str(urls.dataset(name)))))


@router.get("/distribution/{name}-sparql", responses=_RESPONSES, response_class=Response)
async def distribution(name: str, request: Request, state: StateDep) -> Response:
    """The distribution whose access URL is the guarded SPARQL endpoint."""
    graph = fm.distribution_record(await describe(state), name)
    if graph is None:
        raise NotFound("no such distribution")
    return _render(request, graph)
