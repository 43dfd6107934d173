"""SPARQL normalisation and hashing, and the structural facts a policy decides on.

``query_hash`` is the one function that ``pht validate``, the operator (approved-query hashes)
and the gateway (is this query approved?) all use, so formatting, comments and prefix
spelling never change whether a query is approved. ``inspect_query`` parses with rdflib's
SPARQL 1.1 grammar and walks the parse tree; it never executes anything.
"""

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin

from pyparsing import ParseException
from rdflib.plugins.sparql import parser as sparql_parser
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.term import URIRef, Variable

#: A prefixed name (``ex:local``), its local part with SPARQL's escapes (PN_LOCAL_ESC).
_PNAME: Final = r"""
  | (?P<pname>(?:[A-Za-z][\w.-]*)?:(?:(?:[\w:%-]|\\[_~.!$&'()*+,;=/?\#@%-])
        (?:(?:[\w.:%-]|\\[_~.!$&'()*+,;=/?\#@%-])*(?:[\w:%-]|\\[_~.!$&'()*+,;=/?\#@%-]))?)?)
"""
_LEXICON: Final = r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\r\n]*)
  | (?P<string>\"\"\"(?:[^\"\\]|\\.|\"(?!\"\"))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''
      |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\s]*>)
  %PNAME%
  | (?P<var>[?$][\w]+)
  | (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<langtag>@[A-Za-z]+(?:-[A-Za-z0-9]+)*)
  | (?P<word>[A-Za-z_][\w-]*)
  | (?P<operator>\^\^|>=|<=|!=|&&|\|\|)
  | (?P<other>[^\s])
    """
_TOKEN: Final = re.compile(_LEXICON.replace("%PNAME%", _PNAME), re.VERBOSE)
#: The same tokens where no prefixed name can start (see :func:`_tokens`).
_TOKEN_NO_PNAME: Final = re.compile(_LEXICON.replace("%PNAME%", ""), re.VERBOSE)

#: A run that could be a prefixed name's prefix; a prefixed name needs a ``:`` right after it.
_PREFIX_RUN: Final = re.compile(r"[A-Za-z][\w.-]*")

#: One escaped character in a prefixed name's local part (``ex:a\#b`` names ``...a#b``).
_LOCAL_ESCAPE: Final = re.compile(r"\\([_~.!$&'()*+,;=/?#@%-])")

KEYWORDS: Final = frozenset(
    [
        "select",
        "construct",
        "describe",
        "ask",
        "where",
        "from",
        "named",
        "prefix",
        "base",
        "distinct",
        "reduced",
        "order",
        "by",
        "asc",
        "desc",
        "limit",
        "offset",
        "optional",
        "union",
        "minus",
        "graph",
        "service",
        "silent",
        "filter",
        "bind",
        "values",
        "as",
        "group",
        "having",
        "not",
        "exists",
        "in",
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "sample",
        "group_concat",
        "separator",
        "true",
        "false",
        "str",
        "lang",
        "langmatches",
        "datatype",
        "bound",
        "iri",
        "uri",
        "bnode",
        "rand",
        "abs",
        "ceil",
        "floor",
        "round",
        "concat",
        "strlen",
        "ucase",
        "lcase",
        "encode_for_uri",
        "contains",
        "strstarts",
        "strends",
        "strbefore",
        "strafter",
        "year",
        "month",
        "day",
        "hours",
        "minutes",
        "seconds",
        "timezone",
        "tz",
        "now",
        "uuid",
        "struuid",
        "md5",
        "sha1",
        "sha256",
        "sha384",
        "sha512",
        "coalesce",
        "if",
        "strlang",
        "strdt",
        "sameterm",
        "isiri",
        "isuri",
        "isblank",
        "isliteral",
        "isnumeric",
        "regex",
        "substr",
        "replace",
        "undef",
        "insert",
        "delete",
        "data",
        "load",
        "clear",
        "drop",
        "create",
        "add",
        "move",
        "copy",
        "to",
        "into",
        "with",
        "using",
        "default",
        "all",
    ]
)


class QuerySyntaxError(ValueError):
    """The text is not SPARQL 1.1; carries the parser's position."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


def _tokens(text: str) -> Iterator[tuple[str | None, str]]:
    """The lexical tokens of ``text`` in linear time.

    A prefixed name's prefix is a run like ``a.b-c`` that must be followed by ``:``. Tried at
    every position, the run would be rescanned from each of its dots (``a.a.a.…`` costs
    quadratic time); once a run is known not to end in ``:``, no prefixed name starts inside
    it, so its positions are tokenised without that alternative. The tokens are the same.
    """
    position = 0
    plain_until = 0
    while position < len(text):
        if position >= plain_until:
            run = _PREFIX_RUN.match(text, position)
            if run is not None and not text.startswith(":", run.end()):
                plain_until = run.end()
        pattern = _TOKEN_NO_PNAME if position < plain_until else _TOKEN
        match = pattern.match(text, position)
        assert match is not None  # ``other`` matches any character that is not space
        yield match.lastgroup, match.group()
        position = match.end()


def normalise_query(text: str) -> str:
    """Strip comments, collapse whitespace, expand prefixes, upper-case keywords.

    IRIs are resolved against the ``BASE`` in force where they appear, in document order, so
    moving a ``PREFIX`` line across a ``BASE`` line changes the hash as it changes the query
    (queries with ``BASE`` are refused by :func:`parse_query` all the same).
    """
    prefixes: dict[str, str] = {}
    tokens: list[str] = []
    pending_prefix: str | None = None
    expecting_prefix_name = False
    expecting_base = False
    base = ""
    for kind, value in _tokens(text):
        if kind in ("ws", "comment"):
            continue
        if kind == "iri" and base:
            value = f"<{urljoin(base, value[1:-1])}>"
        if expecting_base and kind == "iri":
            base = value[1:-1]
            expecting_base = False
            continue
        if expecting_prefix_name and kind == "pname":
            pending_prefix = value[:-1] if value.endswith(":") else value.split(":", 1)[0]
            expecting_prefix_name = False
            continue
        if pending_prefix is not None and kind == "iri":
            prefixes[pending_prefix] = value[1:-1]
            pending_prefix = None
            continue
        if kind == "word" and value.lower() in KEYWORDS:
            if value.lower() == "prefix":
                expecting_prefix_name = True
                continue
            if value.lower() == "base":
                expecting_base = True
                continue
            tokens.append(value.upper())
        elif kind == "pname":
            prefix, _, local = value.partition(":")
            if prefix in prefixes:
                # ``\#`` and friends are escapes inside a local name (SPARQL's PN_LOCAL_ESC), not
                # comments: the term is the IRI with the escaped character itself.
                unescaped = _LOCAL_ESCAPE.sub(r"\1", local)
                tokens.append(f"<{prefixes[prefix]}{unescaped}>")
            else:
                tokens.append(value)
        else:
            tokens.append(value)
    return " ".join(tokens)


def query_hash(text: str) -> str:
    """sha256 of the normalised query: the identity approvals and the gateway agree on."""
    return hashlib.sha256(normalise_query(text).encode()).hexdigest()


@dataclass
class QueryFacts:
    """What the gateway and the policy need to know about a parsed query."""

    form: str  # SELECT, ASK, CONSTRUCT, DESCRIBE, or UPDATE
    uses_service: bool = False
    from_graphs: set[str] = field(default_factory=set)
    from_named_graphs: set[str] = field(default_factory=set)
    graph_iris: set[str] = field(default_factory=set)
    uses_graph_variable: bool = False

    @property
    def named_graphs(self) -> set[str]:
        return self.from_graphs | self.from_named_graphs | self.graph_iris


_FORMS: Final = {
    "SelectQuery": "SELECT",
    "AskQuery": "ASK",
    "ConstructQuery": "CONSTRUCT",
    "DescribeQuery": "DESCRIBE",
}


def _position(text: str, exc: ParseException) -> tuple[int, int]:
    return exc.lineno, exc.col


#: What the checked text and the executed text could disagree on: a carriage return ends a
#: comment for some parsers and not others, and ``\u`` escapes are expanded before parsing by
#: some and never by others. A query containing either is refused, so the text the gateway
#: checks and hashes is the text the store runs.
_AMBIGUOUS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|\\[uU]")


def refuse_ambiguous(text: str) -> None:
    """Raise :class:`QuerySyntaxError` for text that parsers may read differently."""
    match = _AMBIGUOUS.search(text)
    if match is None:
        return
    line = text.count("\n", 0, match.start()) + 1
    column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    raise QuerySyntaxError(
        f"control characters (such as carriage returns) and \\u escapes are refused "
        f"(line {line}, column {column}): send the query with plain line feeds and literal "
        "characters",
        line,
        column,
    )


def refuse_base(text: str) -> None:
    """Raise :class:`QuerySyntaxError` for a ``BASE`` declaration.

    With a base, what a relative IRI (a ``PREFIX`` value included) means depends on where it
    stands relative to each ``BASE`` line, and parsers differ in how they resolve it: a query that
    reads one way to the steward could run another way. Absolute IRIs and ``PREFIX`` say the same
    without that doubt.
    """
    for line_text_offset, (kind, value) in _offsets(text):
        if kind == "word" and value.lower() == "base":
            line = text.count("\n", 0, line_text_offset) + 1
            column = line_text_offset - (text.rfind("\n", 0, line_text_offset) + 1) + 1
            raise QuerySyntaxError(
                f"BASE declarations are refused (line {line}, column {column}): write absolute "
                "IRIs or PREFIX declarations instead",
                line,
                column,
            )


def _offsets(text: str) -> Iterator[tuple[int, tuple[str | None, str]]]:
    offset = 0
    for kind, value in _tokens(text):
        yield offset, (kind, value)
        offset += len(value)


#: Tokens whose text may hold any character: everywhere else a query is ASCII.
_FREE_TEXT_KINDS: Final = frozenset({"string", "comment", "iri"})


def refuse_non_ascii_names(text: str) -> None:
    """Raise :class:`QuerySyntaxError` for a character beyond ASCII outside strings, comments
    and IRIs.

    SPARQL allows such letters in prefixes, local names, variables and blank nodes, and this
    module's lexer does not read them as a parser does (``é:`` is no prefix to it): two queries
    that name different IRIs could normalise alike and share an approved hash. Names in ASCII
    say the same; strings, comments and IRIs keep any language.
    """
    for offset, (kind, value) in _offsets(text):
        if kind in _FREE_TEXT_KINDS or value.isascii():
            continue
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise QuerySyntaxError(
            f"a character beyond ASCII outside a string, comment or IRI (line {line}, column "
            f"{column}): write prefixes, names and variables in ASCII",
            line,
            column,
        )


def parse_query(text: str) -> Any:
    """Parse SPARQL 1.1 (query or update); raises :class:`QuerySyntaxError` with a position."""
    refuse_ambiguous(text)
    refuse_base(text)
    refuse_non_ascii_names(text)
    if not text.strip():
        raise QuerySyntaxError("the query is empty", 1, 1)
    try:
        return sparql_parser.parseQuery(text)
    except ParseException as query_exc:
        try:
            return sparql_parser.parseUpdate(text)
        except ParseException:
            line, column = _position(text, query_exc)
            raise QuerySyntaxError(
                f"SPARQL syntax error at line {line}, column {column}", line, column
            ) from None
    except Exception as exc:  # rdflib raises assorted errors for e.g. unknown prefixes
        raise QuerySyntaxError(f"SPARQL could not be parsed: {exc}") from None


def _walk(node: Any, facts: QueryFacts, prologue: dict[str, str]) -> None:
    if isinstance(node, CompValue):
        name = node.name
        if name == "ServiceGraphPattern":
            facts.uses_service = True
        if name == "GraphGraphPattern":
            term = node["term"] if "term" in node else None  # noqa: SIM401 (CompValue.get differs)
            if isinstance(term, Variable):
                facts.uses_graph_variable = True
            else:
                iri = _resolve(term, prologue)
                if iri:
                    facts.graph_iris.add(iri)
        if name == "DatasetClause":
            if "default" in node:
                default = node["default"]
                facts.from_graphs.add(_resolve(default, prologue) or str(default))
            if "named" in node:
                named = node["named"]
                facts.from_named_graphs.add(_resolve(named, prologue) or str(named))
        for value in node.values():
            _walk(value, facts, prologue)
    elif isinstance(node, (list, tuple)) or (hasattr(node, "__iter__") and hasattr(node, "asList")):
        for item in node:
            _walk(item, facts, prologue)


def _resolve(term: Any, prologue: dict[str, str]) -> str | None:
    if isinstance(term, URIRef):
        return str(term)
    if isinstance(term, CompValue) and term.name == "pname":
        # ``CompValue.get`` answers the key itself for a missing key, so test membership:
        # ``g:`` (an empty local name) has no ``localname`` at all.
        prefix = str(term["prefix"]) if "prefix" in term else ""
        local = _LOCAL_ESCAPE.sub(r"\1", str(term["localname"])) if "localname" in term else ""
        if prefix in prologue:
            return prologue[prefix] + local
        return f"{prefix}:{local}"
    return None


def inspect_query(text: str) -> QueryFacts:
    """Parse and report the query form, SERVICE use and every graph it names."""
    return facts_of(parse_query(text))


def facts_of(parsed: Any) -> QueryFacts:
    """The facts of a parse tree from :func:`parse_query` (for callers that keep the tree)."""
    prologue: dict[str, str] = {}
    if isinstance(parsed, CompValue):  # an update request
        facts = QueryFacts(form="UPDATE")
    elif len(parsed) == 2 and isinstance(parsed[1], CompValue) and parsed[1].name in _FORMS:
        for decl in parsed[0]:
            if isinstance(decl, CompValue) and decl.name == "PrefixDecl":
                prefix = str(decl["prefix"]) if "prefix" in decl else ""
                prologue[prefix] = str(decl["iri"])
        facts = QueryFacts(form=_FORMS[parsed[1].name])
    else:
        facts = QueryFacts(form="UPDATE")
    try:
        _walk(parsed, facts, prologue)
    except Exception as exc:  # a parse tree shape the walk does not know: refuse, never crash
        raise QuerySyntaxError(f"the query could not be analysed ({type(exc).__name__})") from None
    return facts


def lexical_tokens(text: str) -> Iterator[tuple[str, str]]:
    """The lexical tokens of ``text`` as (kind, text), whitespace and comments included, in
    linear time; joined, they give ``text`` back. For tools that lay a query out."""
    for kind, value in _tokens(text):
        yield kind or "other", value
