"""The query worker process: opens the store read-only and answers one job at a time.

Running queries in a separate process is what makes a timeout real: the gateway kills the
process (Oxigraph has no cancellation from Python, and a thread cannot be stopped). The worker
serialises the answer in Rust, counts rows from the compact TSV form (one line per row, since
TSV escapes newlines in literals) and refuses an answer over the row cap instead of truncating
it. Distinct patients are the answer's IRIs that are typed ``ncit:C16960`` in the allowed
graphs; that set is computed once per dataset and worker (workers restart after a load).
"""

import re
from multiprocessing.connection import Connection
from typing import Any, Final

import pyoxigraph as ox

from pht_contract.vocabulary import PATIENT
from pht_station_api.triplestores.jobs import (
    Backend,
    EmbeddedBackend,
    QueryJob,
    QueryOutcome,
    RemoteBackend,
)

_IRI_FIELD: Final = re.compile(rb"(?:^|\t)<([^<>\t\n]*)>(?=\t|\n|$)", re.MULTILINE)
_NT_IRI: Final = re.compile(rb"<([^<>\s]*)>")
_RESULT_FORMATS: Final = {
    "json": ox.QueryResultsFormat.JSON,
    "xml": ox.QueryResultsFormat.XML,
    "csv": ox.QueryResultsFormat.CSV,
    "tsv": ox.QueryResultsFormat.TSV,
}
_RDF_FORMATS: Final = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "rdfxml": ox.RdfFormat.RDF_XML,
}
PATIENT_QUERY: Final = f"SELECT DISTINCT ?p WHERE {{ ?p a <{PATIENT}> }}"


class _Refusal(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _Engine:
    """Executes a job on the backend and returns raw pyoxigraph results."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = (
            ox.Store.read_only(backend.path) if isinstance(backend, EmbeddedBackend) else None
        )
        self._patients: dict[tuple[str, ...], frozenset[bytes]] = {}

    def execute(self, query: str, job: QueryJob, graph_result: bool) -> Any:
        if self.store is not None:
            return self.store.query(
                query,
                default_graph=[ox.NamedNode(g) for g in job.default_graphs],
                named_graphs=[ox.NamedNode(g) for g in job.named_graphs],
            )
        assert isinstance(self.backend, RemoteBackend)
        return _remote_execute(self.backend, query, job, graph_result)

    def patients(self, graphs: tuple[str, ...]) -> frozenset[bytes]:
        cached = self._patients.get(graphs)
        if cached is None:
            job = QueryJob(PATIENT_QUERY, "SELECT", graphs, graphs, "tsv", 0)
            solutions = self.execute(PATIENT_QUERY, job, graph_result=False)
            tsv = solutions.serialize(format=ox.QueryResultsFormat.TSV)
            cached = frozenset(_IRI_FIELD.findall(tsv))
            self._patients[graphs] = cached
        return cached


def _remote_execute(backend: RemoteBackend, query: str, job: QueryJob, graph_result: bool) -> Any:
    from SPARQLWrapper import POST, SPARQLWrapper

    client = SPARQLWrapper(backend.endpoint)
    client.setMethod(POST)
    client.setTimeout(max(1, int(min(backend.timeout_seconds, job.timeout_seconds))))
    if backend.user is not None:
        client.setCredentials(backend.user, backend.password or "")
    for graph in job.default_graphs:
        client.addDefaultGraph(graph)
    for graph in job.named_graphs:
        client.addNamedGraph(graph)
    accept = "application/n-triples" if graph_result else "application/sparql-results+json"
    client.setOnlyConneg(True)
    client.addCustomHttpHeader("Accept", accept)
    client.setQuery(query)
    body = client.query().response.read()
    if graph_result:
        return ox.parse(body, format=ox.RdfFormat.N_TRIPLES)
    return ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)


def _over_cap(rows: int, cap: int) -> None:
    if rows > cap:
        raise _Refusal(
            "RowCapExceeded",
            f"the answer has more than the policy's row cap of {cap} rows; "
            "aggregate in SPARQL or narrow the query",
        )


def answer(engine: _Engine, job: QueryJob) -> QueryOutcome:
    """Run one job; refusals and failures come back as ``error`` (never raised)."""
    graph_result = job.form in ("CONSTRUCT", "DESCRIBE")
    try:
        result = engine.execute(job.query, job, graph_result)
        if isinstance(result, ox.QueryBoolean):
            fmt = _RESULT_FORMATS.get(job.result_format, ox.QueryResultsFormat.JSON)
            return QueryOutcome("boolean", result.serialize(format=fmt) or b"", 1, 0)
        allowed = tuple(sorted(set(job.default_graphs) | set(job.named_graphs)))
        if graph_result:
            triples = list(result)
            _over_cap(len(triples), job.row_cap)
            fmt_rdf = _RDF_FORMATS.get(job.result_format, ox.RdfFormat.TURTLE)
            body = ox.serialize(triples, format=fmt_rdf) or b""
            nt = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""
            bound = frozenset(_NT_IRI.findall(nt)) & engine.patients(allowed)
            return QueryOutcome("graph", body, len(triples), len(bound), patients=bound)
        tsv = result.serialize(format=ox.QueryResultsFormat.TSV) or b""
        rows = tsv.count(b"\n") - 1
        _over_cap(rows, job.row_cap)
        bound = frozenset(_IRI_FIELD.findall(tsv, tsv.find(b"\n") + 1)) & engine.patients(allowed)
        if job.result_format == "tsv":
            body = tsv
        else:
            fmt = _RESULT_FORMATS.get(job.result_format, ox.QueryResultsFormat.JSON)
            parsed = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
            body = parsed.serialize(format=fmt) or b""
        return QueryOutcome("solutions", body, rows, len(bound), patients=bound)
    except _Refusal as refusal:
        return QueryOutcome(error=(refusal.reason, refusal.message))
    except SyntaxError as exc:
        return QueryOutcome(error=("MalformedQuery", f"the store could not parse the query: {exc}"))
    except Exception as exc:
        return QueryOutcome(error=("StoreUnavailable", f"the store failed: {type(exc).__name__}"))


def worker_main(conn: Connection, backend: Backend) -> None:
    """Entry point of a worker process: ready message, then one job per message until EOF."""
    try:
        engine = _Engine(backend)
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ""))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(answer(engine, job))
