"""SPARQL laid out for a reader: the same tokens, one pattern per line, indented by group.

A steward approves the query that runs, so the layout may change whitespace and the case of
keywords and nothing else: strings, IRIs, prefixed names, numbers and comments are copied as
they are, every comment on a line of its own. Keywords are upper-cased, ``PREFIX`` lines come
first, each ``{`` opens an indented group, every triple pattern ends its line, ``;`` and ``,``
continuations are indented under their subject, and ``FILTER``, ``OPTIONAL``, ``UNION``,
``BIND``, ``VALUES``, subqueries and the solution modifiers start lines of their own (and a
pattern after a ``FILTER`` or ``BIND`` expression starts the next one).

The result is checked before it is returned: re-read, it must give the same tokens as the text
as written (so it has the same :func:`~pht_contract.sparql.query_hash` and parses to the same
query). A name the lexer reads in parts (a blank node ``_:b``, a name with letters beyond ASCII)
keeps its parts together as written, and no part of it is taken for a keyword, so the layout
still parses to the same query. Text that is
too long, nested too deep, ambiguous to parsers, that holds characters which change how text
is displayed (invisible, direction-changing or line-separating characters) or a string over
several lines or with a long run of spaces (which could draw a fake layout), or that would not
survive the check is refused with :class:`NotFormatted`, and the caller shows it as written.
Pure text work in linear time; nothing is parsed into a query and nothing is executed.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pht_contract.sparql import KEYWORDS, QuerySyntaxError, lexical_tokens, refuse_ambiguous

#: Bounds beyond which a query is shown as written: its characters, tokens and group depth.
MAX_CHARS: Final = 64 * 1024
MAX_TOKENS: Final = 20_000
MAX_DEPTH: Final = 32
INDENT: Final = "  "

#: Keywords that begin a line of their own where they stand outside parentheses.
LINE_KEYWORDS: Final = frozenset(
    [
        "PREFIX",
        "BASE",
        "SELECT",
        "CONSTRUCT",
        "DESCRIBE",
        "ASK",
        "WHERE",
        "FROM",
        "FILTER",
        "OPTIONAL",
        "MINUS",
        "BIND",
        "VALUES",
        "GRAPH",
        "SERVICE",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "INSERT",
        "DELETE",
        "LOAD",
        "CLEAR",
        "DROP",
        "CREATE",
        "ADD",
        "MOVE",
        "COPY",
        "WITH",
        "USING",
    ]
)
#: Keywords after which ``GRAPH`` (or another line keyword) continues the same statement.
CONTINUED_BY: Final = frozenset(
    [
        "CLEAR",
        "DROP",
        "CREATE",
        "LOAD",
        "INTO",
        "ADD",
        "MOVE",
        "COPY",
        "TO",
        "SILENT",
        "INSERT",
        "DELETE",
        "DATA",
        "NAMED",
    ]
)
#: Keywords written with a space before their ``(``; other words call a function: ``COUNT(``.
SPACED_BEFORE_PARENTHESIS: Final = frozenset(
    [
        "FILTER",
        "BIND",
        "VALUES",
        "SELECT",
        "IN",
        "NOT",
        "BY",
        "AS",
        "HAVING",
        "WHERE",
        "DISTINCT",
        "REDUCED",
    ]
)
#: Literals that stay as written (``true``, not ``TRUE``).
LITERAL_WORDS: Final = frozenset({"true", "false"})
_LAYOUT_KINDS: Final = frozenset({"ws", "comment"})
#: Token kinds that may be parts of one name which the lexer reads apart.
_NAME_KINDS: Final = frozenset({"word", "other", "pname", "var", "number"})
#: Keywords whose bracketed expression ends a line: what follows is another pattern.
EXPRESSION_KEYWORDS: Final = frozenset({"FILTER", "BIND"})
#: Unicode categories that change how text displays without showing themselves: controls,
#: format characters (bidirectional overrides, zero-width ones), line and paragraph separators,
#: spaces other than the ASCII one, private-use, surrogate and unassigned code points.
HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cs", "Cn"})
#: A run of spaces inside a string long enough to push what follows out of a reader's sight.
_LONG_SPACE_RUN: Final = re.compile(r"[ \t]{16}")


class NotFormatted(ValueError):
    """The query is shown as written; the message says why."""


@dataclass
class _Layout:
    lines: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    depth: int = 0
    #: Extra indentation of a ``;`` or ``,`` continuation of the current triple pattern.
    continuation: int = 0
    #: Parentheses and brackets open within the current group (one entry per open group).
    open_parens: list[int] = field(default_factory=lambda: [0])
    previous: tuple[str, str] = ("", "")
    #: A ``}`` ended the line, unless what follows belongs on it (``.``, ``UNION``, ``)``).
    closed_group: bool = False
    in_prologue: bool = True
    #: Inside the bracketed expression of a ``FILTER`` or ``BIND``.
    expression: bool = False

    @property
    def parens(self) -> int:
        return self.open_parens[-1]

    def break_line(self) -> None:
        if self.words:
            indent = INDENT * (self.depth + self.continuation)
            self.lines.append(indent + "".join(self.words))
            self.words = []
        self.closed_group = False

    def add(self, kind: str, text: str, joined: bool = False) -> None:
        if self.words and not joined and _spaced(self.previous, (kind, text)):
            self.words.append(" ")
        self.words.append(text)
        self.previous = (kind, text)


def _kept_together(before: tuple[str, str], token: tuple[str, str]) -> bool:
    """Whether two tokens written without a space are parts of one name to a parser that the
    lexer reads apart (``_`` and ``:b`` of a blank node; ``?a``, ``·`` and ``b``; ``é`` and
    ``:x``): they stay together as written, and a part is never a keyword."""
    if before[0] not in _NAME_KINDS or token[0] not in _NAME_KINDS:
        return False
    if any(kind == "other" and text.isascii() for kind, text in (before, token)):
        return False
    return before[1] == "_" or not before[1].isascii() or not token[1].isascii()


def _hidden_character(text: str) -> str | None:
    """The first character that changes how the text displays, as ``U+XXXX``."""
    for character in text:
        if character in " \t\n":
            continue
        if unicodedata.category(character) in HIDDEN_CATEGORIES:
            return f"U+{ord(character):04X}"
    return None


def reveal_hidden(text: str) -> str:
    """The text with every character that changes how it displays written as ``⟨U+XXXX⟩``:
    for showing a query as written, where such a character would otherwise act unseen."""
    return "".join(
        f"⟨U+{ord(c):04X}⟩"
        if c not in " \t\n" and unicodedata.category(c) in HIDDEN_CATEGORIES
        else c
        for c in text
    )


def _spaced(before: tuple[str, str], token: tuple[str, str]) -> bool:
    """Whether a space separates two tokens on one line (none where it would change a token)."""
    kind, text = token
    previous_kind, previous = before
    if text in (",", ")", "]") or kind == "langtag" or "^^" in (text, previous):
        return False
    if previous in ("(", "!", "^") and previous_kind == "other":
        return False
    if text == "(":
        return previous_kind in ("var", "number", "string", "other") or (
            previous_kind == "word" and previous.upper() in SPACED_BEFORE_PARENTHESIS
        )
    # No space before a property path's modifier: ``ex:knows+``.
    path_step = previous_kind in ("pname", "iri") or previous in (")", "a")
    return text not in ("*", "+", "?") or not path_step


def _significant(tokens: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Tokens that carry meaning, keywords in one case: what the layout must keep."""
    kept = []
    for kind, text in tokens:
        if kind in _LAYOUT_KINDS:
            continue
        if kind == "word" and text.lower() in KEYWORDS:
            text = text.upper()
        kept.append((kind, text))
    return kept


def _keyword(kind: str, text: str) -> str:
    if kind == "word" and text.lower() in KEYWORDS and text.lower() not in LITERAL_WORDS:
        return text.upper()
    return text


def _lay_out(tokens: list[tuple[str, str]]) -> str:
    layout = _Layout()
    glued = False
    before = ("", "")
    for kind, raw in tokens:
        was_glued, glued = glued, kind not in _LAYOUT_KINDS
        if kind == "ws":
            continue
        if kind == "comment":
            layout.break_line()
            layout.words = [raw.rstrip()]
            layout.break_line()
            layout.previous = ("", "")
            continue
        joined, before = was_glued and _kept_together(before, (kind, raw)), (kind, raw)
        if joined:
            layout.add(kind, raw, joined=True)  # part of a name: as written, never a keyword
            continue
        text = _keyword(kind, raw)
        if layout.closed_group and text not in (".", ")", ",", ";", "UNION"):
            layout.break_line()
        layout.closed_group = False
        keyword = text if kind == "word" else ""
        if keyword in EXPRESSION_KEYWORDS and layout.parens == 0:
            layout.expression = True
        if keyword in LINE_KEYWORDS and layout.parens == 0:
            if layout.in_prologue and keyword not in ("PREFIX", "BASE") and layout.lines:
                layout.break_line()
                layout.lines.append("")
            if keyword not in ("PREFIX", "BASE"):
                layout.in_prologue = False
            if not (layout.previous[0] == "word" and layout.previous[1] in CONTINUED_BY):
                layout.break_line()
                layout.continuation = 0
        if text == "{":
            if layout.previous == ("other", ")") and layout.words[:1] != ["VALUES"]:
                layout.break_line()  # a group after a FILTER or BIND starts a line
            layout.add(kind, text)
            layout.break_line()
            layout.expression = False
            layout.depth += 1
            layout.continuation = 0
            layout.open_parens.append(0)
            if layout.depth > MAX_DEPTH:
                raise NotFormatted(f"nested deeper than {MAX_DEPTH} groups")
            continue
        if text == "}":
            layout.break_line()
            layout.depth = max(layout.depth - 1, 0)
            layout.continuation = 0
            if len(layout.open_parens) > 1:
                layout.open_parens.pop()
            layout.previous = ("", "")
            layout.add(kind, text)
            layout.closed_group = True
            continue
        if text in ("(", "[") and kind == "other":
            layout.open_parens[-1] += 1
        elif text in (")", "]") and kind == "other":
            layout.open_parens[-1] = max(layout.parens - 1, 0)
        layout.add(kind, text)
        if layout.expression and layout.parens == 0 and text == ")" and kind == "other":
            # ``FILTER (...)`` and ``BIND (... AS ?x)`` end here: a pattern after them starts a
            # line of its own instead of trailing out of sight.
            layout.expression = False
            layout.closed_group = True
        if layout.parens == 0 and kind == "other" and layout.depth > 0:
            if text == ".":
                layout.break_line()
                layout.continuation = 0
            elif text in (";", ","):
                layout.break_line()
                layout.continuation = 1 if text == ";" else 2
                layout.previous = ("", "")
        if kind == "iri" and layout.parens == 0 and layout.words[0] in ("PREFIX", "BASE"):
            layout.break_line()  # ``PREFIX ex: <...>`` ends with its IRI
    layout.break_line()
    return "\n".join(layout.lines) + "\n"


def format_query(text: str) -> str:
    """The query laid out, or :class:`NotFormatted` (show it as written)."""
    if len(text) > MAX_CHARS:
        raise NotFormatted(f"longer than {MAX_CHARS} characters")
    try:
        refuse_ambiguous(text)
    except QuerySyntaxError:
        raise NotFormatted("control characters or \\u escapes") from None
    hidden = _hidden_character(text)
    if hidden is not None:
        raise NotFormatted(f"a character that changes how the text displays ({hidden})")
    tokens: list[tuple[str, str]] = []
    for token in lexical_tokens(text):
        tokens.append(token)
        if len(tokens) > MAX_TOKENS:
            raise NotFormatted(f"more than {MAX_TOKENS} tokens")
        kind, value = token
        if kind == "string" and "\n" in value:
            raise NotFormatted("a string runs over several lines")
        if kind == "string" and _LONG_SPACE_RUN.search(value):
            raise NotFormatted("a string holds a long run of spaces")
    formatted = _lay_out(tokens)
    if len(formatted) > 4 * len(text) + 4096:
        raise NotFormatted("the layout would be much longer than the query")
    if _significant(lexical_tokens(formatted)) != _significant(tokens):
        raise NotFormatted("the layout would change how the query reads")
    comments = [t for k, t in tokens if k == "comment"]
    if [t for k, t in lexical_tokens(formatted) if k == "comment"] != [
        c.rstrip() for c in comments
    ]:
        raise NotFormatted("the layout would change a comment")
    return formatted
