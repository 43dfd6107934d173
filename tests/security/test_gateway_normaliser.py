"""Attacker: a query whose hash covers less than what the parser executes.

The hashing normaliser once read ``\\#`` inside a prefixed local name as the start of a
comment and dropped the rest of the line, while the SPARQL parser executed it; two different
queries then shared a hash. These properties hold the normaliser and the parser to the same
reading: every variable and IRI the parser sees is in the normalised text, and text after an
escape can never vanish from the hash. ``pht validate`` and the contract never crash on the
texts that once did.
"""

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.term import URIRef, Variable

from pht_contract import sparql
from pht_contract.sparql import inspect_query, normalise_query, parse_query, query_hash

REPO = Path(__file__).resolve().parents[2]
ESCAPABLE = "_~.-!$&'()*+,;=/?#@%"
local_char = st.one_of(
    st.sampled_from("abcxyz0123"),
    st.sampled_from(ESCAPABLE).map(lambda c: "\\" + c),
)
local_names = st.lists(local_char, min_size=1, max_size=6).map("".join)
variables = st.sampled_from(["?a", "?b", "?patient", "?stage"])


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _terms(node: Any, found: set[str]) -> None:
    if isinstance(node, Variable):
        found.add("?" + str(node))
    elif isinstance(node, URIRef):
        found.add("<" + _unescape(str(node)) + ">")
    elif isinstance(node, dict):
        for value in node.values():
            _terms(value, found)
    elif isinstance(node, (list, tuple, set)):
        for item in node:
            _terms(item, found)


def _query(local: str, tail_var: str) -> str:
    return (
        "PREFIX ex: <urn:pht:x:>\n"
        f"SELECT * WHERE {{ ?s ex:{local} ?o . ?s <urn:pht:p> {tail_var} }}\n"
    )


@settings(max_examples=200, deadline=None)
@given(local=local_names, tail_var=variables)
def test_normaliser_keeps_every_term_the_parser_executes(local: str, tail_var: str) -> None:
    text = _query(local, tail_var)
    try:
        algebra = translateQuery(parse_query(text)).algebra
    except Exception:
        return  # not SPARQL: the gateway refuses it, nothing is hashed or run
    seen: set[str] = set()
    _terms(algebra["p"]["p"]["triples"] if "p" in algebra["p"] else algebra, seen)
    tokens = set(normalise_query(text).split())
    assert {"?s", "?o", tail_var} <= seen
    assert seen <= tokens, (text, seen - tokens)


@settings(max_examples=200, deadline=None)
@given(local=local_names, tail=st.sampled_from([". ?s ?p ?x }", "FILTER(?o) }", "OPTIONAL {} }"]))
def test_text_after_an_escape_always_changes_the_hash(local: str, tail: str) -> None:
    head = f"PREFIX ex: <urn:pht:x:>\nSELECT * WHERE {{ ?s ex:{local}\\# ?o "
    assert query_hash(head + tail) != query_hash(head + "}")


def test_the_reported_swap_no_longer_shares_a_hash() -> None:
    approved = "PREFIX ex: <urn:pht:x:>\nSELECT ?s WHERE { ?s ex:a\\#b ?o }"
    swapped = "PREFIX ex: <urn:pht:x:>\nSELECT ?s WHERE { ?s ex:a\\#b ?o . ?s ?p ?all }"
    assert query_hash(approved) != query_hash(swapped)
    assert "<urn:pht:x:a#b>" in normalise_query(approved).split()


def test_graph_with_an_empty_local_name_is_understood() -> None:
    facts = inspect_query("PREFIX g: <urn:pht:graph:lung1>\nASK { GRAPH g: { ?s ?p ?o } }")
    assert facts.graph_iris == {"urn:pht:graph:lung1"}
    empty = inspect_query("PREFIX : <urn:pht:graph:>\nASK { GRAPH :lung1 { ?s ?p ?o } }")
    assert empty.graph_iris == {"urn:pht:graph:lung1"}


def test_pht_validate_reports_a_graph_query_it_once_crashed_on(tmp_path: Path) -> None:
    train = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())
    train["spec"]["queries"][0]["sparql"] = (
        "PREFIX g: <urn:pht:graph:secret>\nSELECT * WHERE { GRAPH g: { ?s ?p ?o } }"
    )
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(train))
    policy = REPO / "examples" / "policies" / "station-policy.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "pht_cli.main", "validate", str(path), "--policy", str(policy)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "GraphNotAllowed" in result.stdout and "urn:pht:graph:secret" in result.stdout


def _reference_tokens(text: str) -> list[tuple[str | None, str]]:
    """The straightforward tokenisation: every alternative tried at every position."""
    return [(m.lastgroup, m.group()) for m in sparql._TOKEN.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=120),
        st.lists(
            st.sampled_from(["a", "ex", ".", "-", ":", "_", "1", " ", "\\#", "#", "?x", "<u>"]),
            max_size=40,
        ).map("".join),
    )
)
def test_the_linear_tokeniser_finds_the_same_tokens(text: str) -> None:
    assert list(sparql._tokens(text)) == _reference_tokens(text)


def test_hashing_a_dotted_run_takes_linear_time() -> None:
    """``a.a.a.…`` once cost quadratic time in the operator, ``pht validate`` and here."""
    started = time.perf_counter()
    query_hash("a." * 32_000)
    assert time.perf_counter() - started < 1.0
