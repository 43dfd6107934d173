"""Is this query allowed for this train, and on which dataset does it run?

Policy logic lives in the contract (:func:`pht_contract.evaluation.check_query_facts`): the
same function decides at admission time and here, so a query admitted with the Train is the
query the gateway accepts. This module only maps its verdicts to specific HTTP refusals, adds
the protocol-level checks (dataset parameters, size, approved hashes) and builds the explicit
dataset the store receives: the train's allowed graphs, or the subset the query names.
"""

import functools
from dataclasses import dataclass

from pht_contract.conditions import Reason
from pht_contract.evaluation import check_query_facts
from pht_contract.policies import DataAccessPolicy
from pht_contract.sparql import QueryFacts, QuerySyntaxError, inspect_query, normalise_query
from pht_station_api.errors import (
    GraphNotAllowed,
    MalformedQuery,
    QueryNotAllowed,
    QueryNotApproved,
    RequestTooLarge,
    ServiceRefused,
    UpdateRefused,
)
from pht_station_api.gateway.reserialisations import reserialise
from pht_station_api.registry import RegisteredTrain

PARSE_CACHE_SIZE = 512
#: Only queries up to this size are cached, so the cache stays small whatever trains send
#: (approved queries are at most 16 KiB, the Train CRD's limit).
CACHED_QUERY_CHARS = 16384


@dataclass(frozen=True)
class CheckedQuery:
    #: The text the store executes (re-serialised from the parse for a remote endpoint).
    text: str
    form: str
    query_hash: str
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]


@dataclass(frozen=True)
class _Verdict:
    facts: QueryFacts | None
    syntax_error: QuerySyntaxError | None
    violations: tuple[tuple[Reason, str], ...]
    query_hash: str | None
    lexical_service: bool


def _verdict(text: str, allowed_graphs: tuple[str, ...], construct: bool) -> _Verdict:
    """Parse once per distinct (query, policy) pair: rdflib's parser costs milliseconds."""
    if len(text) <= CACHED_QUERY_CHARS:
        return _cached_verdict(text, allowed_graphs, construct)
    return _parse_verdict(text, allowed_graphs, construct)


def _parse_verdict(text: str, allowed_graphs: tuple[str, ...], construct: bool) -> _Verdict:
    try:
        facts = inspect_query(text)
    except QuerySyntaxError as exc:
        return _Verdict(None, exc, (), None, False)
    # Built without validation: the graphs come from a validated registration, and an empty
    # list must mean "no graph allowed", not a crash.
    data = DataAccessPolicy.model_construct(
        allowed_graphs=list(allowed_graphs), allow_construct_describe=construct
    )
    violations, digest = check_query_facts(text, data, "query")
    # Belt and braces: a SERVICE keyword anywhere outside strings and IRIs is refused even if a
    # parser difference hid it from the parse tree.
    lexical = "SERVICE" in normalise_query(text).split()
    return _Verdict(facts, None, tuple((v.reason, v.message) for v in violations), digest, lexical)


_cached_verdict = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(_parse_verdict)


def query_hash_of(text: str, train: RegisteredTrain) -> str | None:
    """The hash of a query if it parses (for the audit of refused queries)."""
    data = train.registration.policy.data_access
    verdict = _verdict(
        text, tuple(train.registration.allowed_graphs), data.allow_construct_describe
    )
    return verdict.query_hash


def check_query(
    text: str,
    train: RegisteredTrain,
    default_graph_uris: list[str],
    named_graph_uris: list[str],
    remote: bool,
) -> CheckedQuery:
    registration = train.registration
    data = registration.policy.data_access
    if len(text.encode()) > data.max_query_bytes:
        raise RequestTooLarge(f"the query exceeds the policy's {data.max_query_bytes} bytes")
    allowed = tuple(registration.allowed_graphs)
    verdict = _verdict(text, allowed, data.allow_construct_describe)
    if verdict.syntax_error is not None:
        error = verdict.syntax_error
        raise MalformedQuery(str(error), line=error.line, column=error.column)
    facts = verdict.facts
    assert facts is not None and verdict.query_hash is not None
    if facts.form == "UPDATE":
        raise UpdateRefused("SPARQL updates are refused: the data store is read-only")
    if facts.uses_service or verdict.lexical_service:
        raise ServiceRefused("SERVICE (federated query) is refused")
    for reason, message in verdict.violations:
        if reason == Reason.GRAPH_NOT_ALLOWED:
            raise GraphNotAllowed(f"the query {message}")
    for reason, message in verdict.violations:
        if reason == Reason.QUERY_NOT_ALLOWED:
            raise QueryNotAllowed(message)
    outside = sorted(set(default_graph_uris + named_graph_uris) - set(allowed))
    if outside:
        raise GraphNotAllowed(
            f"the dataset parameters name graphs outside the policy: {', '.join(outside)}"
        )
    if data.query_mode == "ApprovedQueriesOnly" and (
        verdict.query_hash not in registration.approved_query_hashes
    ):
        raise QueryNotApproved(
            f"query {verdict.query_hash} is not one of this train's approved queries"
        )
    default, named = _dataset(facts, allowed, default_graph_uris, named_graph_uris)
    executed = reserialise(text, facts.form) if remote else text
    return CheckedQuery(executed, facts.form, verdict.query_hash, default, named)


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
