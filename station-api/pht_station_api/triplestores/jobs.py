"""What the gateway sends a query worker and what comes back (picklable, no patient data kept).

Only the serialised answer, its row count and the distinct patients it bound leave a worker;
the gateway audits the counts, hands the bytes to the train and the bound patients' IRIs to the
registry (which keeps keyed fingerprints only), never to a log.
"""

from dataclasses import dataclass, field
from typing import Literal

ResultFormat = Literal["json", "xml", "csv", "tsv", "turtle", "ntriples", "rdfxml"]
Kind = Literal["solutions", "boolean", "graph"]


@dataclass(frozen=True)
class QueryJob:
    query: str
    form: str
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]
    result_format: ResultFormat
    row_cap: int
    #: The policy's timeout; a remote endpoint's HTTP call gives up after it as well.
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class QueryOutcome:
    kind: Kind | None = None
    body: bytes = b""
    rows: int = 0
    distinct_patients: int = 0
    #: CamelCase reason and message when the worker refused or failed the query.
    error: tuple[str, str] | None = None
    #: The IRIs of those distinct patients, for the differencing ledger's fingerprint; kept
    #: out of ``repr`` so an outcome that reaches a log or a traceback carries none.
    patients: frozenset[bytes] = field(default=frozenset(), repr=False)


@dataclass(frozen=True)
class EmbeddedBackend:
    path: str


@dataclass(frozen=True)
class RemoteBackend:
    endpoint: str
    user: str | None = None
    password: str | None = None
    timeout_seconds: int = 60


Backend = EmbeddedBackend | RemoteBackend
