"""Content negotiation for SPARQL answers (SPARQL 1.1 Protocol result formats)."""

from typing import Final

from pht_station_api.errors import NotAcceptable
from pht_station_api.triplestores.jobs import ResultFormat

SOLUTION_TYPES: Final[dict[str, ResultFormat]] = {
    "application/sparql-results+json": "json",
    "application/json": "json",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPH_TYPES: Final[dict[str, ResultFormat]] = {
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
    "application/rdf+xml": "rdfxml",
}
MEDIA_TYPE_OF: Final[dict[ResultFormat, str]] = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "turtle": "text/turtle; charset=utf-8",
    "ntriples": "application/n-triples",
    "rdfxml": "application/rdf+xml",
}


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """Media ranges with their q-values, best first (order kept among equals)."""
    if not header:
        return [("*/*", 1.0)]
    ranges: list[tuple[str, float, int]] = []
    for index, part in enumerate(header.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        ranges.append((media, quality, index))
    ranges.sort(key=lambda item: (-item[1], item[2]))
    return [(media, quality) for media, quality, _ in ranges if quality > 0]


def negotiate(accept: str | None, form: str) -> ResultFormat:
    offered = GRAPH_TYPES if form in ("CONSTRUCT", "DESCRIBE") else SOLUTION_TYPES
    default: ResultFormat = "turtle" if offered is GRAPH_TYPES else "json"
    for media, _ in parse_accept(accept):
        if media in offered:
            return offered[media]
        if media in ("*/*", "application/*", "text/*"):
            if media == "text/*" and offered is SOLUTION_TYPES:
                return "csv"
            return default
    raise NotAcceptable(
        f"none of the accepted media types is offered for {form}: " + ", ".join(offered)
    )
