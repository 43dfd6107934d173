"""FAIR Data Point 1.2 records of this station, built as RDF graphs.

Hierarchy (DCAT 2 + FDP ontology): the FDP record at the API root (``fdp-o:FAIRDataPoint``, a
``dcat:DataService`` and ``fdp-o:MetadataService``) → one catalog → one dataset per graph the
station offers → one distribution per dataset whose ``dcat:accessURL`` is the guarded SPARQL
endpoint (a registered train's token is needed to use it). Each parent also describes an LDP
``DirectContainer`` of its children, which is how FDP clients navigate. Figures are live: the
dataset's triple count (``void:triples``) and last modification come from the store.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import FOAF, RDF, RDFS, XSD

from pht_contract.vocabulary import NCIT
from pht_contract.wire import SPARQL_PATH

# Open namespaces: rdflib's closed DCAT/DCTERMS lack terms FDP uses (dcat:version).
DCAT: Final = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS: Final = Namespace("http://purl.org/dc/terms/")
DATACITE: Final = Namespace("http://purl.org/spar/datacite/")
FDP: Final = Namespace("https://w3id.org/fdp/fdp-o#")
LDP: Final = Namespace("http://www.w3.org/ns/ldp#")
VOID: Final = Namespace("http://rdfs.org/ns/void#")
FDP_SPEC: Final = URIRef("https://specs.fairdatapoint.org/fdp-specs-v1.2.html")
CC0: Final = URIRef("http://purl.org/NET/rdflicense/cc-zero1.0")
ENGLISH: Final = URIRef("http://id.loc.gov/vocabulary/iso639-1/en")
RESTRICTED: Final = URIRef(
    "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
)
NCIT_TAXONOMY: Final = URIRef(NCIT.rstrip("#"))
LUNG_NSCLC_THEME: Final = URIRef(NCIT + "C2926")  # non-small cell lung carcinoma
VERSION: Final = "1.0"
CATALOG_ID: Final = "lung-cancer"


@dataclass(frozen=True)
class DatasetFigures:
    graph: str
    triples: int
    modified: datetime | None


@dataclass(frozen=True)
class StationDescription:
    base_url: str
    sparql_base_url: str
    station_name: str
    title: str
    issued: datetime
    datasets: tuple[DatasetFigures, ...]


def slug(graph: str) -> str:
    """A URL-safe name for a graph IRI (``urn:pht:graph:lung1`` → ``lung1``)."""
    tail = graph.rstrip("/#").replace("#", ":").replace("/", ":").split(":")[-1]
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in tail)
    return cleaned or "data"


def _at(moment: datetime) -> Literal:
    return Literal(moment.astimezone(UTC).replace(microsecond=0), datatype=XSD.dateTime)


class Urls:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def root(self) -> URIRef:
        return URIRef(self.base + "/")

    def catalog(self) -> URIRef:
        return URIRef(f"{self.base}/catalog/{CATALOG_ID}")

    def dataset(self, name: str) -> URIRef:
        return URIRef(f"{self.base}/dataset/{name}")

    def distribution(self, name: str) -> URIRef:
        return URIRef(f"{self.base}/distribution/{name}-sparql")

    def container(self, kind: str, parent: str = "") -> URIRef:
        return URIRef(f"{self.base}/{kind}/" if not parent else f"{parent}/{kind}/")


def _graph() -> Graph:
    graph = Graph()
    for prefix, namespace in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("fdp-o", FDP),
        ("ldp", LDP),
        ("void", VOID),
        ("xsd", XSD),
        ("datacite", DATACITE),
        ("rdfs", RDFS),
    ):
        graph.bind(prefix, namespace)
    return graph


def _modified(station: StationDescription) -> datetime:
    moments = [d.modified for d in station.datasets if d.modified] + [station.issued]
    return max(moments)


def _resource(
    graph: Graph,
    node: URIRef,
    title: str,
    station: StationDescription,
    issued: datetime,
    modified: datetime,
) -> None:
    """What the reference shapes ask of every dcat:Resource, and FDP metadata fields."""
    publisher = BNode()
    graph.add((node, DCTERMS.title, Literal(title, lang="en")))
    graph.add((node, RDFS.label, Literal(title, lang="en")))
    graph.add((node, DCTERMS.publisher, publisher))
    graph.add((publisher, RDF.type, FOAF.Agent))
    graph.add((publisher, FOAF.name, Literal(station.title)))
    graph.add((node, DCAT.version, Literal(VERSION)))
    graph.add((node, DCTERMS.language, ENGLISH))
    graph.add((node, DCTERMS.license, CC0))
    graph.add((node, DCTERMS.conformsTo, FDP_SPEC))
    identifier = URIRef(str(node) + "#identifier")
    graph.add((node, FDP.metadataIdentifier, identifier))
    graph.add((identifier, RDF.type, DATACITE.Identifier))
    graph.add((identifier, DCTERMS.identifier, Literal(str(node))))
    graph.add((node, FDP.metadataIssued, _at(issued)))
    graph.add((node, FDP.metadataModified, _at(modified)))


def _container(
    graph: Graph, container: URIRef, parent: URIRef, relation: URIRef, members: list[URIRef]
) -> None:
    graph.add((container, RDF.type, LDP.DirectContainer))
    graph.add((container, DCTERMS.title, Literal("members", lang="en")))
    graph.add((container, LDP.membershipResource, parent))
    graph.add((container, LDP.hasMemberRelation, relation))
    for member in members:
        graph.add((container, LDP.contains, member))


def fdp_record(station: StationDescription) -> Graph:
    urls = Urls(station.base_url)
    graph = _graph()
    root, catalog = urls.root(), urls.catalog()
    for kind in (FDP.FAIRDataPoint, FDP.MetadataService, DCAT.DataService, DCAT.Resource):
        graph.add((root, RDF.type, kind))
    _resource(graph, root, station.title, station, station.issued, _modified(station))
    graph.add(
        (
            root,
            DCTERMS.description,
            Literal(
                "Personal Health Train station: metadata of the data that trains may query "
                "here, through a policy-enforcing SPARQL gateway. No patient data is served.",
                lang="en",
            ),
        )
    )
    graph.add((root, DCAT.endpointURL, root))
    graph.add((root, FDP.conformsToFdpSpec, FDP_SPEC))
    graph.add((root, FDP.uiLanguage, ENGLISH))
    graph.add((root, FDP.metadataCatalog, catalog))
    _container(graph, urls.container("catalog"), root, FDP.metadataCatalog, [catalog])
    return graph


def catalog_record(station: StationDescription) -> Graph:
    urls = Urls(station.base_url)
    graph = _graph()
    catalog = urls.catalog()
    datasets = [urls.dataset(slug(d.graph)) for d in station.datasets]
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, RDF.type, DCAT.Resource))
    _resource(
        graph,
        catalog,
        f"{station.title}: lung cancer data",
        station,
        station.issued,
        _modified(station),
    )
    graph.add((catalog, DCTERMS.isPartOf, urls.root()))
    graph.add((catalog, DCTERMS.issued, _at(station.issued)))
    graph.add((catalog, DCTERMS.modified, _at(_modified(station))))
    graph.add((catalog, DCAT.themeTaxonomy, NCIT_TAXONOMY))
    for dataset in datasets:
        graph.add((catalog, DCAT.dataset, dataset))
    _container(graph, urls.container("dataset", str(catalog)), catalog, DCAT.dataset, datasets)
    return graph


def _figures(station: StationDescription, name: str) -> DatasetFigures | None:
    return next((d for d in station.datasets if slug(d.graph) == name), None)


def dataset_record(station: StationDescription, name: str) -> Graph | None:
    figures = _figures(station, name)
    if figures is None:
        return None
    urls = Urls(station.base_url)
    graph = _graph()
    dataset, distribution = urls.dataset(name), urls.distribution(name)
    modified = figures.modified or station.issued
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((dataset, RDF.type, DCAT.Resource))
    _resource(graph, dataset, f"Lung cancer cohort ({name})", station, station.issued, modified)
    graph.add((dataset, DCTERMS.isPartOf, urls.catalog()))
    graph.add((dataset, DCTERMS.issued, _at(station.issued)))
    graph.add((dataset, DCTERMS.modified, _at(modified)))
    graph.add((dataset, DCAT.theme, LUNG_NSCLC_THEME))
    graph.add((dataset, DCAT.keyword, Literal("NSCLC", lang="en")))
    graph.add((dataset, DCAT.keyword, Literal("ROO", lang="en")))
    graph.add((dataset, DCTERMS.accessRights, RESTRICTED))
    graph.add((dataset, VOID.triples, Literal(figures.triples, datatype=XSD.integer)))
    graph.add((dataset, VOID.sparqlEndpoint, URIRef(station.sparql_base_url + SPARQL_PATH)))
    graph.add((dataset, DCAT.distribution, distribution))
    _container(
        graph,
        urls.container("distribution", str(dataset)),
        dataset,
        DCAT.distribution,
        [distribution],
    )
    return graph


def distribution_record(station: StationDescription, name: str) -> Graph | None:
    figures = _figures(station, name)
    if figures is None:
        return None
    urls = Urls(station.base_url)
    graph = _graph()
    distribution = urls.distribution(name)
    modified = figures.modified or station.issued
    graph.add((distribution, RDF.type, DCAT.Distribution))
    graph.add((distribution, RDF.type, DCAT.Resource))
    _resource(
        graph,
        distribution,
        f"Guarded SPARQL endpoint ({name})",
        station,
        station.issued,
        modified,
    )
    graph.add((distribution, DCTERMS.isPartOf, urls.dataset(name)))
    graph.add((distribution, DCTERMS.issued, _at(station.issued)))
    graph.add((distribution, DCTERMS.modified, _at(modified)))
    graph.add((distribution, DCAT.accessURL, URIRef(station.sparql_base_url + SPARQL_PATH)))
    graph.add((distribution, DCAT.mediaType, Literal("application/sparql-results+json")))
    graph.add(
        (
            distribution,
            DCTERMS.description,
            Literal(
                "SPARQL 1.1 endpoint for registered trains only: queries are checked against "
                "the station policy and audited; the named graph is " + figures.graph,
                lang="en",
            ),
        )
    )
    return graph
