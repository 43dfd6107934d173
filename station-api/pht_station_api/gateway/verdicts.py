"""What the gateway needs to know about one query text, computed away from the event loop.

:func:`verdict_of` runs inside a parse worker process (see :mod:`.parsing`): it parses with
rdflib, applies the contract's policy checks, hashes, and builds the text the store will
execute. Everything it returns is plain data that crosses a process boundary; it never
raises for any input text, so a query the analysis does not understand is a refusal, not a
crash.
"""

from dataclasses import dataclass

from pht_contract.evaluation import check_query_facts
from pht_contract.policies import DataAccessPolicy
from pht_contract.sparql import (
    QueryFacts,
    QuerySyntaxError,
    facts_of,
    normalise_query,
    parse_query,
)
from pht_station_api.errors import StationApiError
from pht_station_api.gateway.reserialisations import reserialise


@dataclass(frozen=True)
class ParseJob:
    text: str
    allowed_graphs: tuple[str, ...]
    construct: bool


@dataclass(frozen=True)
class Verdict:
    facts: QueryFacts | None
    #: (message, line, column) when the text is not SPARQL the gateway accepts.
    syntax_error: tuple[str, int | None, int | None] | None
    violations: tuple[tuple[str, str], ...]
    query_hash: str | None
    lexical_service: bool
    #: What the store executes: the re-serialisation of the parse (never the train's bytes).
    executed: str | None
    #: Why no executable text could be built (a refusal message), if so.
    unexecutable: str | None


def verdict_of(job: ParseJob) -> Verdict:
    try:
        return _verdict(job)
    except Exception as exc:  # never let any text crash the worker: refuse it instead
        return Verdict(
            None,
            (f"the query could not be analysed ({type(exc).__name__})", None, None),
            (),
            None,
            False,
            None,
            None,
        )


def _verdict(job: ParseJob) -> Verdict:
    text = job.text
    # Parsed once: the facts, the policy verdict and the re-serialisation share the tree.
    try:
        parsed = parse_query(text)
        facts = facts_of(parsed)
    except QuerySyntaxError as exc:
        return Verdict(None, (str(exc), exc.line, exc.column), (), None, False, None, None)
    # Built without validation: the graphs come from a validated registration, and an empty
    # list must mean "no graph allowed", not a crash.
    data = DataAccessPolicy.model_construct(
        allowed_graphs=list(job.allowed_graphs), allow_construct_describe=job.construct
    )
    violations, digest = check_query_facts(text, data, "query", facts)
    # Belt and braces: a SERVICE keyword anywhere outside strings and IRIs is refused even if a
    # parser difference hid it from the parse tree.
    lexical = "SERVICE" in normalise_query(text).split()
    executed: str | None = None
    unexecutable: str | None = None
    if facts.form != "UPDATE" and not violations and not lexical and not facts.uses_service:
        try:
            executed = reserialise(text, facts.form, parsed)
        except StationApiError as refusal:
            unexecutable = refusal.message
    return Verdict(
        facts,
        None,
        tuple((str(v.reason), v.message) for v in violations),
        digest,
        lexical,
        executed,
        unexecutable,
    )
