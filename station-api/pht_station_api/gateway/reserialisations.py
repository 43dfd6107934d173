"""What a remote SPARQL endpoint receives: the query re-serialised, not the train's bytes.

A hospital endpoint's parser may read the original text differently from rdflib's (comments,
escapes, exotic syntax); sending a re-serialisation means the endpoint executes what the gateway
checked. SELECT and ASK queries are rebuilt from rdflib's algebra (ASK by rebuilding its
pattern as a SELECT and putting ``ASK`` back in front), then parsed and checked again: a
rebuild that does not parse or changes the form is refused. rdflib cannot rebuild CONSTRUCT or
DESCRIBE, so those get the canonical token stream of :func:`pht_contract.sparql.normalise_query`
(comments gone, prefixes expanded, one space between tokens) — a lexical, not structural,
re-serialisation, as ``docs/station-api.md`` says.
"""

import functools

from rdflib.plugins.sparql.algebra import translateAlgebra, translateQuery

from pht_contract.sparql import QuerySyntaxError, inspect_query, normalise_query, parse_query
from pht_station_api.errors import QueryNotAllowed

CACHED_QUERY_CHARS = 16384


def reserialise(text: str, form: str) -> str:
    if len(text) <= CACHED_QUERY_CHARS:
        return _cached(text, form)
    return _reserialise(text, form)


def _reserialise(text: str, form: str) -> str:
    if form not in ("SELECT", "ASK"):
        return normalise_query(text)
    try:
        query = translateQuery(parse_query(text))
        if form == "ASK":
            query.algebra.name = "SelectQuery"
            selected = str(translateAlgebra(query))
            rebuilt = "ASK " + selected[selected.index("{") :]
        else:
            rebuilt = str(translateAlgebra(query))
        facts = inspect_query(rebuilt)
    except (QuerySyntaxError, Exception):
        raise QueryNotAllowed(
            "the query cannot be re-serialised safely for the remote endpoint"
        ) from None
    if facts.form != form or facts.uses_service:
        raise QueryNotAllowed("the query cannot be re-serialised safely for the remote endpoint")
    return rebuilt


_cached = functools.lru_cache(maxsize=256)(_reserialise)
