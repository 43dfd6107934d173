"""The FAIR Data Point passes the reference implementation's SHACL shapes, navigably."""

from pathlib import Path

import httpx
import pytest
from pyshacl import validate
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, SH
from stationkit import COHORT_PATIENTS, REPO

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHAPES_DIR = REPO / "tests" / "data" / "fdp-shapes"
DCAT = Namespace("http://www.w3.org/ns/dcat#")
FDP = Namespace("https://w3id.org/fdp/fdp-o#")
LDP = Namespace("http://www.w3.org/ns/ldp#")
VOID = Namespace("http://rdfs.org/ns/void#")


def shapes() -> Graph:
    graph = Graph()
    for path in sorted(SHAPES_DIR.glob("*.ttl")):
        graph.parse(path, format="turtle")
    return graph


def ontology() -> Graph:
    """What makes every record a dcat:Resource, as the reference implementation's mapping does."""
    graph = Graph()
    for sub, sup in (
        (FDP.FAIRDataPoint, FDP.MetadataService),
        (FDP.MetadataService, DCAT.DataService),
        (DCAT.DataService, DCAT.Resource),
        (DCAT.Catalog, DCAT.Resource),
        (DCAT.Dataset, DCAT.Resource),
        (DCAT.Distribution, DCAT.Resource),
    ):
        graph.add((sub, RDFS.subClassOf, sup))
    return graph


def focus_counts(data: Graph, shape_graph: Graph) -> dict[URIRef, int]:
    """Focus nodes per target-class shape, following rdfs:subClassOf like pyshacl does."""
    closure = data + ontology()
    counts: dict[URIRef, int] = {}
    for shape, target in shape_graph.subject_objects(SH.targetClass):
        classes = set(closure.transitive_subjects(RDFS.subClassOf, target))
        counts[shape] = len({s for c in classes for s in closure.subjects(RDF.type, c)})
    return counts


async def fetch(client: httpx.AsyncClient, url: str, accept: str = "text/turtle") -> Graph:
    response = await client.get(url, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    fmt = {"text/turtle": "turtle", "application/ld+json": "json-ld"}.get(accept, "nt")
    return Graph().parse(data=response.text, format=fmt)


async def crawl(client: httpx.AsyncClient) -> Graph:
    """Follow the FDP's own links from the root: catalog → dataset → distribution."""
    everything = Graph()
    root = await fetch(client, "/")
    everything += root
    for catalog in root.objects(None, FDP.metadataCatalog):
        catalog_graph = await fetch(client, str(catalog))
        everything += catalog_graph
        for dataset in catalog_graph.objects(catalog, DCAT.dataset):
            dataset_graph = await fetch(client, str(dataset))
            everything += dataset_graph
            for distribution in dataset_graph.objects(dataset, DCAT.distribution):
                everything += await fetch(client, str(distribution))
    return everything


async def test_fdp_conforms_and_every_shape_has_focus_nodes(external: httpx.AsyncClient) -> None:
    data = await crawl(external)
    shape_graph = shapes()
    conforms, _, report = validate(
        data, shacl_graph=shape_graph, ont_graph=ontology(), inference="rdfs", advanced=True
    )
    assert conforms, report
    counts = focus_counts(data, shape_graph)
    empty = [str(shape) for shape, count in counts.items() if count == 0]
    assert not empty, f"shapes without focus nodes: {empty}"
    assert len(counts) == 8  # seven record shapes and the publisher (foaf:Agent) shape


async def test_a_broken_record_fails_the_shapes(external: httpx.AsyncClient) -> None:
    data = await crawl(external)
    distribution = next(data.subjects(RDF.type, DCAT.Distribution))
    data.remove((distribution, DCAT.mediaType, None))
    dataset = next(data.subjects(RDF.type, DCAT.Dataset))
    data.remove((dataset, DCAT.theme, None))
    conforms, _, report = validate(
        data, shacl_graph=shapes(), ont_graph=ontology(), inference="rdfs", advanced=True
    )
    assert not conforms
    assert "mediaType" in str(report) and "theme" in str(report)


async def test_distribution_points_at_the_guarded_gateway_with_live_figures(
    external: httpx.AsyncClient,
) -> None:
    data = await crawl(external)
    distribution = next(data.subjects(RDF.type, DCAT.Distribution))
    assert (
        str(data.value(distribution, DCAT.accessURL)) == "http://internal.test/internal/v1/sparql"
    )
    dataset = next(data.subjects(RDF.type, DCAT.Dataset))
    triples = int(data.value(dataset, VOID.triples))
    # Every generated patient contributes 17–22 triples; the figure is the store's, not a constant.
    assert 17 * COHORT_PATIENTS <= triples <= 22 * COHORT_PATIENTS
    assert data.value(dataset, FDP.metadataModified) is not None


async def test_turtle_default_json_ld_and_n_triples(external: httpx.AsyncClient) -> None:
    plain = await external.get("/")
    assert plain.headers["content-type"].startswith("text/turtle")
    turtle = Graph().parse(data=plain.text, format="turtle")
    json_ld = await fetch(external, "/", "application/ld+json")
    n_triples = await fetch(external, "/", "application/n-triples")
    assert len(turtle) == len(json_ld) == len(n_triples) > 10
    assert (await external.get("/", headers={"Accept": "image/png"})).status_code == 406


async def test_ldp_containers_navigate_to_children(external: httpx.AsyncClient) -> None:
    root = await fetch(external, "/")
    container = next(root.subjects(RDF.type, LDP.DirectContainer))
    listed = await fetch(external, str(container).replace("http://fdp.test", ""))
    catalogs = list(listed.objects(container, LDP.contains))
    assert catalogs == list(root.objects(None, FDP.metadataCatalog))
    catalog_path = str(catalogs[0]).replace("http://fdp.test", "")
    datasets = await fetch(external, catalog_path + "/dataset/")
    assert len(list(datasets.objects(None, LDP.contains))) == 1
    assert (await external.get("/dataset/unknown")).status_code == 404


REFERENCE = Path("/work/shared/reference/fdp-shapes")


@pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="the shared reference copy is not on this machine"
)
async def test_shapes_are_an_unchanged_copy_of_the_reference() -> None:
    for path in REFERENCE.glob("*.ttl"):
        assert (SHAPES_DIR / path.name).read_bytes() == path.read_bytes(), path.name
