"""SPARQL laid out for a steward: the same query (hash and rdflib algebra), bounded work."""

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib.plugins.sparql import algebra, parser

from pht_contract.sparql import lexical_tokens, query_hash
from pht_contract.sparqlformat import MAX_CHARS, MAX_DEPTH, NotFormatted, format_query

REPO = Path(__file__).resolve().parents[2]


def algebra_of(text: str) -> Any:
    return algebra.translateQuery(parser.parseQuery(text)).algebra


def assert_same_query(original: str, formatted: str) -> None:
    assert query_hash(formatted) == query_hash(original)
    assert algebra_of(formatted) == algebra_of(original)


def assert_comment_lines_are_comments(formatted: str) -> None:
    """A line that starts with ``#`` is a comment and nothing else, and no comment shares a
    line: so a ``\\#`` inside a name mid-line never reads as the start of one."""
    for line in formatted.splitlines():
        kinds = [kind for kind, _ in lexical_tokens(line.strip())]
        if line.strip().startswith("#") or "comment" in kinds:
            assert kinds == ["comment"], line


def example_queries() -> Iterator[tuple[str, str]]:
    for path in sorted([*REPO.glob("examples/**/*.yaml"), *REPO.glob("trains/**/*.yaml")]):
        for document in yaml.safe_load_all(path.read_text()):
            spec = document.get("spec") if isinstance(document, dict) else None
            for query in (spec or {}).get("queries") or []:
                yield f"{path.relative_to(REPO)}:{query['name']}", query["sparql"]


EXAMPLES = list(example_queries())


def test_the_examples_hold_queries() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_every_example_query_formats_to_the_same_query(where: str, text: str) -> None:
    formatted = format_query(text)
    assert_same_query(text, formatted)
    assert format_query(formatted) == formatted


def test_the_algebra_comparison_sees_a_changed_query() -> None:
    _, text = EXAMPLES[0]
    changed = text.replace("?patient", "?someone", 1)
    assert algebra_of(changed) != algebra_of(text)


def test_layout() -> None:
    text = (
        "prefix ex: <http://e.example/v#> # the vocabulary {\n"
        "select ?a (count(distinct ?b) as ?n) where { ?a ex:p ?c , ?d ; ex:q ?b . "
        "optional { ?b ex:r+ ?c } filter(?c > 3 && !bound(?d)) "
        "{ ?a ex:s ?z } union { select ?a where { ?a ex:t ?y } } bind(str(?a) as ?s) } "
        "group by ?a order by desc(?n) limit 10"
    )
    assert format_query(text) == (
        "PREFIX ex: <http://e.example/v#>\n"
        "# the vocabulary {\n"
        "\n"
        "SELECT ?a (COUNT(DISTINCT ?b) AS ?n)\n"
        "WHERE {\n"
        "  ?a ex:p ?c,\n"
        "      ?d ;\n"
        "    ex:q ?b .\n"
        "  OPTIONAL {\n"
        "    ?b ex:r+ ?c\n"
        "  }\n"
        "  FILTER (?c > 3 && !BOUND(?d))\n"
        "  {\n"
        "    ?a ex:s ?z\n"
        "  } UNION {\n"
        "    SELECT ?a\n"
        "    WHERE {\n"
        "      ?a ex:t ?y\n"
        "    }\n"
        "  }\n"
        "  BIND (STR(?a) AS ?s)\n"
        "}\n"
        "GROUP BY ?a\n"
        "ORDER BY DESC(?n)\n"
        "LIMIT 10\n"
    )


HOSTILE = [
    # A string holding a closing brace and a comment mark, and a long string with quotes.
    'SELECT ?s WHERE { ?s <http://e.example/p> "} # not a comment { " . '
    '?s <http://e.example/q> """one "quoted" } # still the string {""" }',
    # Blank node labels and names with letters beyond ASCII, which the lexer reads in parts.
    "PREFIX é: <http://e.example/v#>\nSELECT ?a·b WHERE { _:x é:p ?a·b . _:y.z é:q ?o }",
    "SELECT ?s WHERE { ?s <http://e.example/p> '''it''s } {''' }",
    # An IRI with a fragment, a prefixed name with an escaped '#', a comment with braces.
    "PREFIX ex: <http://e.example/v#>\n"
    'SELECT ?s WHERE { # a comment with { and } and "\n'
    "?s <http://e.example/v#frag> ex:a\\#b . ?s ex:lit 'x'@en-GB, \"1\"^^ex:int }",
    # Literals and paths that a careless layout would glue together or split.
    "SELECT * WHERE { ?s <http://e.example/p>/^<http://e.example/q>* 1.5e3, -2, .5 ; "
    "!(<http://e.example/r>|<http://e.example/t>) ?o FILTER(?o-1>2) }",
    "ASK { VALUES (?a ?b) { (1 2) (UNDEF 'x') } MINUS { ?a ?b ?c } }",
    # Keywords as prefixes and local names, a subquery with VALUES, paths of every operator.
    "PREFIX select: <http://e.example/s#>\nPREFIX where: <http://e.example/w#>\n"
    "SELECT ?s WHERE { ?s select:where where:select . { SELECT ?s WHERE { VALUES ?s "
    "{ select:a where:b } ?s ^select:p/where:q|!(select:r|^where:t)* ?o } LIMIT 3 } }",
    "CONSTRUCT { ?s <http://e.example/p> ?o } WHERE { GRAPH <http://e.example/g> { ?s ?q ?o } }",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_keep_their_meaning(text: str) -> None:
    formatted = format_query(text)
    assert_same_query(text, formatted)
    assert_comment_lines_are_comments(formatted)
    comments = [line.strip() for line in formatted.splitlines() if line.strip().startswith("#")]
    assert all(c.startswith("# ") for c in comments)


def test_comments_stand_on_their_own_lines() -> None:
    text = "SELECT ?s WHERE { ?s ?p ?o . # trailing note\n ?o ?q ?r } # end"
    lines = format_query(text).splitlines()
    assert "  # trailing note" in lines and "# end" in lines
    assert "  ?s ?p ?o ." in lines


def test_huge_nesting_is_shown_as_written_within_bounded_time() -> None:
    text = "SELECT * WHERE " + "{ " * 2000 + "?s ?p ?o" + " }" * 2000
    started = time.monotonic()
    with pytest.raises(NotFormatted, match=f"deeper than {MAX_DEPTH}"):
        format_query(text)
    assert time.monotonic() - started < 2


def test_nesting_within_the_bound_formats() -> None:
    depth = MAX_DEPTH - 1
    text = "SELECT * WHERE " + "{ " * depth + "?s ?p ?o" + " }" * depth
    assert_same_query(text, format_query(text))


def test_long_or_ambiguous_text_is_shown_as_written() -> None:
    with pytest.raises(NotFormatted, match="longer than"):
        format_query("SELECT * WHERE { ?s ?p ?o }" + " " * MAX_CHARS)
    with pytest.raises(NotFormatted, match="control characters"):
        format_query("SELECT * WHERE { ?s ?p ?o } # a\rcomment")
    with pytest.raises(NotFormatted, match="tokens"):
        format_query("SELECT * WHERE { ?s ?p " + "?o, " * 7000 + "?o }")


def test_a_long_flat_query_formats_in_bounded_time_and_size() -> None:
    text = "SELECT * WHERE { " + "?s ?p ?o . " * 1500 + "}"
    started = time.monotonic()
    formatted = format_query(text)
    assert time.monotonic() - started < 2
    assert len(formatted) <= 4 * len(text) + 4096
    assert query_hash(formatted) == query_hash(text)


# --- generated queries -------------------------------------------------------------------

VARIABLES = st.sampled_from(["?a", "?b", "?c", "$d", "?patient"])
PREDICATES = st.sampled_from(
    [
        "ex:p",
        "ex:q",
        "<http://e.example/v#r>",
        "a",
        "ex:p/ex:q",
        "ex:p+",
        "^ex:q",
        "ex:a\\#b",
        "ex:a·b",
    ]
)
OBJECTS = st.one_of(
    VARIABLES,
    st.sampled_from(
        [
            "ex:T",
            '"x } { # y"',
            "'it\\'s'",
            '"""two "quoted" words"""',
            "_:b",
            '"3"^^ex:int',
            '"hallo"@nl',
            "42",
            "-2",
            "1.5e3",
            "true",
            "<http://e.example/#frag>",
        ]
    ),
)
SPACES = st.sampled_from([" ", "  ", "\n", "\t", " # a note { } \n"])


@st.composite
def triples(draw: st.DrawFn) -> str:
    subject = draw(VARIABLES)
    predicates = []
    for _ in range(draw(st.integers(1, 3))):
        objects = draw(st.lists(OBJECTS, min_size=1, max_size=3))
        predicates.append(f"{draw(PREDICATES)} {' , '.join(objects)}")
    return f"{subject} {' ; '.join(predicates)} ."


@st.composite
def group(draw: st.DrawFn, depth: int = 0) -> str:
    parts = draw(st.lists(triples(), min_size=1, max_size=3))
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(
                st.sampled_from(["optional", "union", "filter", "bind", "values", "minus", "sub"])
            )
            inner = draw(group(depth + 1))
            variable = draw(VARIABLES)
            if kind == "optional":
                parts.append(f"optional {inner}")
            elif kind == "union":
                parts.append(f"{inner} union {draw(group(depth + 1))}")
            elif kind == "filter":
                parts.append(f"filter(bound({variable}) || not exists {inner})")
            elif kind == "bind":
                parts.append(f"bind(str({variable}) as ?bound{depth}{len(parts)})")
            elif kind == "values":
                parts.append(f"values {variable} {{ 1 'x' undef }}")
            elif kind == "minus":
                parts.append(f"minus {inner}")
            else:
                parts.append(f"{{ select {variable} where {inner} }}")
    spaces = [draw(SPACES) for _ in parts]
    return "{" + "".join(s + p for s, p in zip(spaces, parts, strict=True)) + draw(SPACES) + "}"


@st.composite
def queries(draw: st.DrawFn) -> str:
    keyword = draw(st.sampled_from(["select", "SELECT", "Select"]))
    tail = draw(st.sampled_from(["", " limit 5", " order by ?a", " group by ?a"]))
    projection = "?a" if "group" in tail else draw(st.sampled_from(["*", "?a", "distinct ?a"]))
    return (
        "prefix ex: <http://e.example/v#>" + draw(SPACES)
        + f"{keyword} {projection} where {draw(group())}{tail}"
    )  # fmt: skip


@given(queries())
@settings(max_examples=100, deadline=None)
def test_generated_queries_format_to_the_same_query(text: str) -> None:
    formatted = format_query(text)
    assert_same_query(text, formatted)
    assert_comment_lines_are_comments(formatted)
    assert format_query(formatted) == formatted


# --- a layout that reads differently from what runs ---------------------------------------


def test_a_pattern_after_a_filter_or_bind_starts_a_line_of_its_own() -> None:
    text = (
        'SELECT * WHERE { ?s <http://e.example/p> ?o FILTER(?o != "a") ?s <http://e.example/ssn> '
        "?n . BIND(1 AS ?x) ?s <http://e.example/q> ?z FILTER regex(?o, 'b') . ?z ?y ?w }"
    )
    formatted = format_query(text)
    assert_same_query(text, formatted)
    lines = formatted.splitlines()
    assert '  FILTER (?o != "a")' in lines
    assert "  ?s <http://e.example/ssn> ?n ." in lines
    assert "  BIND (1 AS ?x)" in lines
    assert "  FILTER REGEX(?o, 'b') ." in lines


@pytest.mark.parametrize(
    ("text", "character"),
    [
        # A line separator in a comment draws a pattern that never runs.
        ("SELECT * WHERE { ?s ?p ?o # note\u2028?s ?q ?secret .\n}", "U+2028"),
        ("SELECT * WHERE { ?s ?p 'a\u0085b' }", "U+0085"),
        ("SELECT * WHERE { ?s ?p ?o FILTER(?o != 'x\u2029y') }", "U+2029"),
        # Bidirectional overrides reorder what follows on the line (the Trojan Source trick).
        ("SELECT * WHERE { ?s ?p ?o FILTER(?o != '\u202e') ?s ?q ?r }", "U+202E"),
        ("SELECT * WHERE { ?s ?p ?o FILTER(?o != '\u2067x\u2069') }", "U+2067"),
        ("PREFIX ex: <http://e.example/>\nSELECT * WHERE { ?s ex:p\u200b ?o }", "U+200B"),
        ("SELECT * WHERE {\u00a0?s ?p ?o }", "U+00A0"),
        ("\ufeffSELECT * WHERE { ?s ?p ?o }", "U+FEFF"),
        ("SELECT * WHERE { ?s ?p '\x85' }", "U+0085"),
    ],
)
def test_characters_that_change_how_text_displays_are_shown_as_written(
    text: str, character: str
) -> None:
    with pytest.raises(
        NotFormatted, match=re.escape(f"changes how the text displays ({character})")
    ):
        format_query(text)


def test_a_string_that_could_draw_a_fake_layout_is_shown_as_written() -> None:
    over_lines = (
        "SELECT * WHERE { ?s ?p ?o FILTER(?o != '''\n}\n# only a note\n''') ?s ?q ?secret }"
    )
    with pytest.raises(NotFormatted, match="string runs over several lines"):
        format_query(over_lines)
    pushed_away = "SELECT * WHERE { ?s ?p ?o FILTER(?o != '" + " " * 400 + "' || ?x) }"
    with pytest.raises(NotFormatted, match="long run of spaces"):
        format_query(pushed_away)
    assert format_query("SELECT * WHERE { ?s ?p 'two  spaces' }")


def test_a_blank_node_label_and_names_beyond_ascii_keep_their_parts_together() -> None:
    text = (
        "PREFIX é: <http://e.example/v#>\nPREFIX éa: <http://e.example/w#>\n"
        "SELECT ?a·b WHERE { _:x é:p ?a·b . _:y.z éa:q ?o }"
    )
    formatted = format_query(text)
    assert "  _:x é:p ?a·b ." in formatted.splitlines()
    assert "  _:y.z éa:q ?o" in formatted.splitlines()
    assert_same_query(text, formatted)


def test_a_keyword_inside_a_name_is_neither_capitalised_nor_laid_out_as_a_keyword() -> None:
    # To a parser ``ex:a·select`` is one name; the lexer reads ``ex:a``, ``·`` and ``select``.
    # Laid out as a keyword it would draw a subquery that does not exist.
    text = (
        "PREFIX ex: <http://e.example/v#>\n"
        'SELECT * WHERE { ?s ex:a·select ?o . ?s ?p ?a·where . _:b ?p "é".?s ?q ?r }'
    )
    formatted = format_query(text)
    assert formatted.splitlines()[-5:] == [
        "  ?s ex:a·select ?o .",
        "  ?s ?p ?a·where .",
        '  _:b ?p "é" .',
        "  ?s ?q ?r",
        "}",
    ]
    assert_same_query(text, formatted)
