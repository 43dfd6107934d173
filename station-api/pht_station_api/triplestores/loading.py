"""Bulk loading RDF into a named graph of the embedded store — by exactly one writer.

``pht load`` (API stopped) and the operator-authenticated load endpoint (API running) both use
:func:`load_rdf`. The API holds an exclusive lock on ``<store>.pht-api.lock`` while it runs, and
:func:`writer_lock` takes the same lock, so a second writer fails fast instead of corrupting
anything; Oxigraph's own RocksDB lock backs this up.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import pyoxigraph as ox

FORMATS: Final = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
}
SUFFIXES: Final = {
    ".ttl": "turtle",
    ".nt": "ntriples",
    ".nq": "nquads",
    ".trig": "trig",
}
MEDIA_TYPES: Final = {
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
    "application/n-quads": "nquads",
    "application/trig": "trig",
}
DEFAULT_GRAPH: Final = "urn:pht:graph:lung1"


class StoreLocked(RuntimeError):
    """Another process (normally the running API) is the store's writer."""


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".pht-api.lock")


@contextlib.contextmanager
def writer_lock(store: Path) -> Iterator[None]:
    path = lock_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreLocked(
                f"{store} is in use by a running station API: load through the API "
                "(pht load --api URL) or stop it first"
            ) from None
        yield
    finally:
        os.close(fd)


def format_for(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix == ".gz":
        suffix = Path(name[:-3]).suffix.lower()
    try:
        return SUFFIXES[suffix]
    except KeyError:
        raise ValueError(f"cannot tell the RDF format of {name!r}: use --format") from None


def load_rdf(store: Path, source: IO[bytes], fmt: str, graph: str | None) -> int:
    """Load into ``graph`` (or the quads' own graphs for N-Quads/TriG when ``graph`` is None).

    Returns the number of quads in the store's target graph(s) afterwards. The caller holds the
    writer lock.
    """
    rdf_format = FORMATS[fmt]
    handle = ox.Store(str(store))
    try:
        target = ox.NamedNode(graph) if graph else None
        if target is not None:
            handle.bulk_load(source, format=rdf_format, to_graph=target)
        else:
            handle.bulk_load(source, format=rdf_format)
        handle.flush()
        if target is not None:
            return sum(1 for _ in handle.quads_for_pattern(None, None, None, target))
        return len(handle)
    finally:
        del handle
