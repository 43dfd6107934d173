"""Property tests: whatever text or headers a train sends, the gateway's parsing answers with
one of its own refusals (a 4xx) or a checked query — never an unexpected exception."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stationkit import GRAPH, example_query, registration

from pht_station_api.errors import NotAcceptable, StationApiError
from pht_station_api.gateway.checks import check_query, job_for, select_text
from pht_station_api.gateway.formats import negotiate
from pht_station_api.gateway.verdicts import verdict_of
from pht_station_api.registry import RegisteredTrain

KM = example_query("kaplan-meier")
SPARQL_WORDS = [
    "SELECT",
    "ASK",
    "CONSTRUCT",
    "DESCRIBE",
    "WHERE",
    "{",
    "}",
    "?s",
    "?p",
    "?o",
    "<urn:a>",
    "GRAPH",
    "?g",
    "SERVICE",
    "service",
    "FROM",
    "NAMED",
    "INSERT",
    "DATA",
    "DELETE",
    "LOAD",
    "FILTER",
    "(",
    ")",
    ".",
    ";",
    "PREFIX",
    "x:",
    "x:y",
    '"lit"',
    "'''",
    "#",
    "\n",
    "OPTIONAL",
    "UNION",
    "LIMIT",
    "10",
    "*",
    f"<{GRAPH}>",
    "<urn:pht:graph:secret>",
    "VALUES",
    "BIND",
    "AS",
    "GRAPH g:",
    "PREFIX g: <urn:pht:graph:secret>",
    "x:a\\#b",
    "\\#",
    "\\u0041",
    "{ { { {",
    "} } } }",
]


def train(**data_access: object) -> RegisteredTrain:
    reg = registration("property-token", [KM], expires_in=timedelta(hours=1), **data_access)
    return RegisteredTrain(registration=reg, registered_at="2026-01-01T00:00:00Z")


APPROVED = train()
ANY = train(query_mode="AnyReadOnlyQuery", allow_construct_describe=True)
token_soup = st.lists(st.sampled_from(SPARQL_WORDS), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=300), token_soup))
def test_any_text_is_checked_or_refused(text: str) -> None:
    for candidate in (APPROVED, ANY):
        try:
            selection = select_text(candidate, text, None, None)
            verdict = verdict_of(job_for(selection, candidate))
            checked = check_query(selection, verdict, candidate, [], [])
        except StationApiError as refusal:
            assert 400 <= refusal.status < 500
            continue
        # Whatever passed names no graph outside the train's and uses no SERVICE.
        assert set(checked.default_graphs) | set(checked.named_graphs) <= {GRAPH}
        assert "SERVICE" not in checked.text.upper().replace("'SERVICE'", "")
        if candidate is APPROVED:
            # Approved mode runs only the stored approved text, never a train's variant.
            assert text == KM
            assert checked.form in ("SELECT", "ASK")


@settings(max_examples=300, deadline=None)
@given(
    accept=st.one_of(st.none(), st.text(max_size=80)),
    form=st.sampled_from(["SELECT", "ASK", "CONSTRUCT", "DESCRIBE"]),
)
def test_any_accept_header_negotiates_or_is_not_acceptable(accept: str | None, form: str) -> None:
    try:
        chosen = negotiate(accept, form)
    except NotAcceptable:
        return
    graph_forms = {"turtle", "ntriples", "rdfxml"}
    assert (chosen in graph_forms) == (form in ("CONSTRUCT", "DESCRIBE"))
