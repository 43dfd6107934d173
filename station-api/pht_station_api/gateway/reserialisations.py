"""What the store executes: the query re-serialised from the gateway's parse.

The embedded store's parser (Oxigraph) or a hospital endpoint's may read the original text
differently from rdflib's (comments, escapes, exotic syntax); running a re-serialisation
means the store executes what the gateway checked. SELECT and ASK queries are rebuilt from
rdflib's algebra (ASK by rebuilding its pattern as a SELECT and putting ``ASK`` back in
front), then parsed and checked again: a rebuild that does not parse or changes the form is
refused. rdflib cannot rebuild CONSTRUCT or DESCRIBE, so those get the canonical token stream
of :func:`pht_contract.sparql.normalise_query` (comments gone, prefixes expanded, escapes
resolved, one space between tokens) — a lexical, not structural, re-serialisation, as
``docs/station-api.md`` says.
"""

from typing import Any

from rdflib.plugins.sparql.algebra import translateAlgebra, translateQuery

from pht_contract.sparql import QuerySyntaxError, inspect_query, normalise_query, parse_query
from pht_station_api.errors import QueryNotAllowed


def reserialise(text: str, form: str, parsed: Any = None) -> str:
    """The text the store runs; ``parsed`` is ``text``'s parse tree when the caller has it.

    Uncached on purpose: analyses are cached per train by the gateway, never across trains.
    """
    if form not in ("SELECT", "ASK"):
        return normalise_query(text)
    try:
        query = translateQuery(parsed if parsed is not None else parse_query(text))
        if form == "ASK":
            query.algebra.name = "SelectQuery"
            selected = str(translateAlgebra(query))
            rebuilt = "ASK " + selected[selected.index("{") :]
        else:
            rebuilt = str(translateAlgebra(query))
        facts = inspect_query(rebuilt)
    except (QuerySyntaxError, Exception):
        raise QueryNotAllowed(
            "the query cannot be re-serialised safely for the data store"
        ) from None
    if facts.form != form or facts.uses_service:
        raise QueryNotAllowed("the query cannot be re-serialised safely for the data store")
    return rebuilt
