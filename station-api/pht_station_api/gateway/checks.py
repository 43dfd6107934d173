"""Is this query allowed for this train, and what exactly does the store run?

Policy logic lives in the contract (:func:`pht_contract.evaluation.check_query_facts`): the
same function decides at admission time and here. This module picks the text to check, maps
the analysis (:mod:`.verdicts`, computed in a worker process) to specific HTTP refusals, adds
the protocol-level checks (dataset parameters, approved queries) and builds the explicit
dataset the store receives: the train's allowed graphs, or the subset the query names.

What is hashed is what runs. When a train names an approved query (by name or hash), the
station runs the text stored with its registration — the text the steward approved — and the
train's own text is never parsed. At a station that runs approved queries only, a train that
sends text gets it run only if it is byte for byte a stored approved text. In open mode the
store executes rdflib's re-serialisation of the parse it checked, never the train's bytes.

Analyses are cached per train, never across trains: a shared cache would tell one train,
by its answer time, which queries another train ran.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from pht_contract.conditions import Reason
from pht_contract.sparql import QueryFacts
from pht_contract.wire import ApprovedQuery
from pht_station_api.errors import (
    GraphNotAllowed,
    MalformedQuery,
    QueryNotAllowed,
    QueryNotApproved,
    RequestTooLarge,
    ServiceRefused,
    UpdateRefused,
)
from pht_station_api.gateway.verdicts import ParseJob, Verdict
from pht_station_api.registry import RegisteredTrain

#: Analyses kept per train, and trains with a cache: bounded whatever trains send.
CACHE_PER_TRAIN: Final = 64
CACHED_TRAINS: Final = 256
#: Only texts up to this size are cached (approved queries are at most 16 KiB).
CACHED_QUERY_CHARS: Final = 16384


@dataclass(frozen=True)
class Selection:
    """The text to analyse, and whether it is a stored approved text (not the train's)."""

    text: str
    approved: ApprovedQuery | None


@dataclass(frozen=True)
class CheckedQuery:
    #: The text the store executes: a re-serialisation of what was checked.
    text: str
    form: str
    query_hash: str
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]


def select_text(
    train: RegisteredTrain, text: str | None, name: str | None, digest: str | None
) -> Selection:
    """The text to check: a stored approved query when named, else the train's own text."""
    registration = train.registration
    data = registration.policy.data_access
    stored = registration.approved_queries
    if name is not None or digest is not None:
        for query in stored:
            if (name is None or query.name == name) and (digest is None or query.hash == digest):
                return Selection(query.sparql, query)
        names = ", ".join(sorted(q.name for q in stored)) or "none"
        raise QueryNotApproved(
            f"this train has no approved query with that name or hash (approved: {names})"
        )
    if text is None:
        raise MalformedQuery("send 'query', or name an approved query with 'query-name'")
    if len(text.encode()) > data.max_query_bytes:
        raise RequestTooLarge(f"the query exceeds the policy's {data.max_query_bytes} bytes")
    if data.query_mode == "ApprovedQueriesOnly":
        # Never parsed: only an exact copy of a stored approved text is accepted, and then the
        # stored text is what runs.
        for query in stored:
            if query.sparql == text:
                return Selection(query.sparql, query)
        names = ", ".join(sorted(q.name for q in stored)) or "none"
        raise QueryNotApproved(
            "this station runs approved queries only: name one with 'query-name' "
            f"(approved: {names})"
        )
    return Selection(text, None)


def job_for(selection: Selection, train: RegisteredTrain) -> ParseJob:
    registration = train.registration
    return ParseJob(
        selection.text,
        tuple(registration.allowed_graphs),
        registration.policy.data_access.allow_construct_describe,
    )


class VerdictCache:
    """Per-train LRU of analyses; a train's cache goes when it is evicted or re-registered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trains: OrderedDict[str, OrderedDict[ParseJob, Verdict]] = OrderedDict()

    def get(self, uid: str, job: ParseJob) -> Verdict | None:
        with self._lock:
            entries = self._trains.get(uid)
            if entries is None or job not in entries:
                return None
            self._trains.move_to_end(uid)
            entries.move_to_end(job)
            return entries[job]

    def put(self, uid: str, job: ParseJob, verdict: Verdict) -> None:
        if len(job.text) > CACHED_QUERY_CHARS:
            return
        with self._lock:
            entries = self._trains.setdefault(uid, OrderedDict())
            self._trains.move_to_end(uid)
            entries[job] = verdict
            while len(entries) > CACHE_PER_TRAIN:
                entries.popitem(last=False)
            while len(self._trains) > CACHED_TRAINS:
                self._trains.popitem(last=False)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._trains.pop(uid, None)


def check_query(
    selection: Selection,
    verdict: Verdict,
    train: RegisteredTrain,
    default_graph_uris: list[str],
    named_graph_uris: list[str],
) -> CheckedQuery:
    registration = train.registration
    data = registration.policy.data_access
    if verdict.syntax_error is not None:
        message, line, column = verdict.syntax_error
        raise MalformedQuery(message, line=line, column=column)
    facts = verdict.facts
    if facts is None or verdict.query_hash is None:
        raise MalformedQuery("the query could not be analysed")
    if facts.form == "UPDATE":
        raise UpdateRefused("SPARQL updates are refused: the data store is read-only")
    if facts.uses_service or verdict.lexical_service:
        raise ServiceRefused("SERVICE (federated query) is refused")
    for reason, message in verdict.violations:
        if reason == Reason.GRAPH_NOT_ALLOWED:
            raise GraphNotAllowed(f"the query {message}")
    for reason, message in verdict.violations:
        if reason in (Reason.QUERY_NOT_ALLOWED, Reason.INVALID_QUERY):
            raise QueryNotAllowed(message)
    if verdict.violations:
        raise QueryNotAllowed(verdict.violations[0][1])
    allowed = tuple(registration.allowed_graphs)
    outside = sorted(set(default_graph_uris + named_graph_uris) - set(allowed))
    if outside:
        raise GraphNotAllowed(
            f"the dataset parameters name graphs outside the policy: {', '.join(outside)}"
        )
    if data.query_mode == "ApprovedQueriesOnly" and (
        selection.approved is None or verdict.query_hash not in registration.approved_query_hashes
    ):
        raise QueryNotApproved(
            f"query {verdict.query_hash} is not one of this train's approved queries"
        )
    if verdict.executed is None:
        raise QueryNotAllowed(
            verdict.unexecutable or "the query cannot be re-serialised for execution"
        )
    default, named = _dataset(facts, allowed, default_graph_uris, named_graph_uris)
    return CheckedQuery(verdict.executed, facts.form, verdict.query_hash, default, named)


def _dataset(
    facts: QueryFacts,
    allowed: tuple[str, ...],
    default_graph_uris: list[str],
    named_graph_uris: list[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The explicit dataset: query FROM clauses win over protocol parameters over the policy."""
    if facts.from_graphs or facts.from_named_graphs:
        return tuple(sorted(facts.from_graphs)), tuple(sorted(facts.from_named_graphs))
    if default_graph_uris or named_graph_uris:
        return tuple(default_graph_uris), tuple(named_graph_uris)
    return allowed, allowed
