"""The approval page's queries: laid out for reading, and as submitted beside it."""

from pht_contract.sparql import query_hash
from pht_station_api.console.i18n import LANGUAGES, Translator
from pht_station_api.console.rendering import ENVIRONMENT
from pht_station_api.console.views import pending_train


def _train(*queries: str) -> dict[str, object]:
    return {
        "metadata": {"name": "t", "namespace": "pht-requests", "uid": "u"},
        "spec": {"queries": [{"name": f"q{i}", "sparql": q} for i, q in enumerate(queries)]},
        "status": {},
    }


SUBMITTED = "prefix ex: <http://e.example/v#> select ?s where { ?s ex:p ?o ; ex:q ?r . }"
NESTED = "SELECT * WHERE " + "{ " * 100 + "?s ?p ?o" + " }" * 100


def test_each_query_is_laid_out_and_kept_as_submitted() -> None:
    (view,) = pending_train(_train(SUBMITTED), None, []).queries
    assert view.sparql == SUBMITTED
    assert view.formatted.splitlines()[:3] == ["PREFIX ex: <http://e.example/v#>", "", "SELECT ?s"]
    assert query_hash(view.formatted) == query_hash(SUBMITTED)
    assert view.note == ""


def test_a_query_beyond_the_bounds_is_shown_as_written_with_the_reason() -> None:
    (view,) = pending_train(_train(NESTED), None, []).queries
    assert (view.formatted, view.sparql) == ("", NESTED)
    assert "deeper than 32" in view.note


def _page(item: object) -> str:
    return ENVIRONMENT.get_template("approval.html").render(
        item=item,
        awaiting=True,
        notice=None,
        failure=None,
        user="steward",
        csrf_token="x",
        t=Translator("en"),
        lang="en",
        languages=LANGUAGES,
        path="/console/approvals/pht-requests/t",
    )


def test_the_page_shows_both_texts_escaped() -> None:
    hostile = SUBMITTED.replace("?o", "?o # </pre><script>alert(1)</script>\n")
    html = _page(pending_train(_train(hostile, NESTED), None, []))
    assert "<script>" not in html
    assert html.count("&lt;/pre&gt;&lt;script&gt;alert(1)") == 2
    assert '<details class="as-submitted"><summary>As submitted</summary>' in html
    assert "Shown as written: nested deeper than 32 groups" in html


def test_characters_that_act_unseen_are_named_where_the_query_is_shown_as_written() -> None:
    # A bidirectional override in a string reorders the rest of its line on screen, and a line
    # separator in a comment draws a pattern that never runs: the steward sees them named.
    hidden = "SELECT * WHERE { ?s ?p ?o FILTER(?o != '\u202e') ?s ?q ?r . # note\u2028?s ?x ?y .\n}"
    (view,) = pending_train(_train(hidden), None, []).queries
    assert view.sparql == hidden
    assert view.formatted == ""
    assert "changes how the text displays (U+202E)" in view.note
    html = _page(pending_train(_train(hidden), None, []))
    assert "\u202e" not in html and "\u2028" not in html
    assert "FILTER(?o != &#39;⟨U+202E⟩&#39;) ?s ?q ?r . # note⟨U+2028⟩?s ?x ?y ." in html
    assert "Shown as written: a character that changes how the text displays (U+202E)" in html
