"""The console's sign-in, sessions, CSRF defence and output checking, on a real station.

A train queries the cohort and uploads a result the gate holds for a steward (the image is
not reviewed, and one table is row-level); stewards sign in with the local login and act in
the console as a browser would.
"""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from consolekit import (
    BASE,
    ORIGIN,
    OTHER_STEWARD,
    RESEARCHER,
    STEWARD,
    hidden,
    post_form,
    sign_in,
    signed_in,
)
from stationkit import bearer, example_query, operator_headers, registration

from pht_contract.wire import (
    RESULT_PATH,
    SPARQL_PATH,
    TRAIN_COMPLETION_PATH,
    TRAIN_REGISTRATION_PATH,
    TrainRegistration,
)
from pht_station_api.console.sessions import COOKIE_NAME
from pht_station_api.console.signin import SignedIn
from pht_station_api.state import StationState

pytestmark = pytest.mark.asyncio(loop_scope="module")

KM = example_query("kaplan-meier")
DONE = {"jobSucceeded": True, "reason": "RunCompleted"}
#: Values of a row-level table: none of them may appear on any console page.
PATIENT_VALUES = ["71.8125", "64.4375", "58.0625"]


def held_manifest() -> dict[str, Any]:
    return {
        "tables": [
            {
                "name": "stages",
                "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
                "rows": [["I", 30], ["II", 2], ["IIIa", 28]],
                "cohortSize": 60,
            },
            {
                "name": "patients",
                "kind": "RowLevel",
                "columns": [
                    {"name": "stage", "role": "Group"},
                    {"name": "n", "role": "Count"},
                    {"name": "age", "role": "Statistic"},
                ],
                "rows": [["I", 1, float(v)] for v in PATIENT_VALUES],
                "cohortSize": 60,
            },
        ],
        "messages": ["<script>alert('message')</script> done"],
    }


async def held_train(
    inside: httpx.AsyncClient, requested_by: str | None = None
) -> TrainRegistration:
    """A train whose result waits for a steward, with a row-level table in it."""
    token = secrets.token_urlsafe(24)
    reg = registration(token, [KM])
    disclosure = reg.policy.disclosure.model_copy(update={"forbid_row_level": False})
    reg = reg.model_copy(
        update={
            "policy": reg.policy.model_copy(update={"disclosure": disclosure}),
            "requested_by": requested_by,
        }
    )
    put = await inside.put(
        TRAIN_REGISTRATION_PATH.format(uid=reg.uid), json=reg.wire(), headers=operator_headers()
    )
    assert put.status_code == 201, put.text
    answer = await inside.get(SPARQL_PATH, params={"query": KM}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    upload = await inside.put(RESULT_PATH, json=held_manifest(), headers=bearer(token))
    assert upload.status_code == 201, upload.text
    done = await inside.put(
        TRAIN_COMPLETION_PATH.format(uid=reg.uid), json=DONE, headers=operator_headers()
    )
    assert done.status_code == 200, done.text
    return reg


def page_of(reg: TrainRegistration) -> str:
    return f"/console/results/{reg.namespace}/{reg.name}"


async def test_sign_in_sets_a_strict_session_cookie_and_never_shows_the_token(
    browser: httpx.AsyncClient,
) -> None:
    browser.cookies.clear()
    answer = await sign_in(browser, STEWARD.username, STEWARD.password)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/results"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE_NAME + "=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags
    assert not any(f.startswith("domain") for f in flags)
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) >= 43 and STEWARD.token not in cookie
    page = await browser.get("/console/results")
    assert page.status_code == 200
    assert STEWARD.token not in page.text
    assert "steward-sam" in page.text
    headers = page.headers
    assert "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (STEWARD.username, "wrong-password"),
        ("mallory", "anything"),
        ("nobody", "nobody-password"),  # a login with no token behind it
    ],
)
async def test_a_failed_sign_in_opens_no_session(
    browser: httpx.AsyncClient, username: str, password: str
) -> None:
    browser.cookies.clear()
    answer = await sign_in(browser, username, password)
    assert answer.status_code == 401
    assert not any(c.startswith(COOKIE_NAME + "=") for c in answer.headers.get_list("set-cookie"))
    assert (await browser.get("/console/results")).status_code == 303


async def test_a_login_form_posted_from_another_site_is_refused(browser: httpx.AsyncClient) -> None:
    browser.cookies.clear()
    form = await browser.get("/console/signin")
    answer = await browser.post(
        "/console/signin/callback",
        data={
            "form_token": hidden(form.text, "form_token"),
            "username": STEWARD.username,
            "password": STEWARD.password,
        },
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 401
    assert "another site" in answer.text


async def test_pages_send_a_visitor_without_a_session_to_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    browser.cookies.clear()
    for path in ("/console/approvals", "/console/results", "/console/trains", "/console/audit"):
        answer = await browser.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/console/signin?return_to={path}"
    browser.cookies.set(COOKIE_NAME, secrets.token_urlsafe(32), domain="console.test")
    assert (await browser.get("/console/results")).status_code == 303


async def test_return_to_never_leaves_the_console(browser: httpx.AsyncClient) -> None:
    browser.cookies.clear()
    for target in ("https://evil.example/", "//evil.example/console/", "/console/../fdp"):
        form = await browser.get("/console/signin", params={"return_to": target})
        assert hidden(form.text, "return_to") == "/console/approvals"


async def test_steward_reviews_a_held_result_without_seeing_patient_rows(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    reg = await held_train(inside)
    await signed_in(browser, STEWARD)
    listing = await browser.get("/console/results")
    assert reg.name in listing.text
    page = await browser.get(page_of(reg))
    assert page.status_code == 200, page.text
    assert "RowLevelReview" in page.text and "StewardReviewRequired" in page.text
    assert 'class="suppressed"' in page.text
    for value in PATIENT_VALUES:
        assert value not in page.text
    # The algorithm's free text is shown as text.
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;message&#39;)&lt;/script&gt;" in page.text


async def test_release_and_block_from_the_console_land_in_provenance_as_the_steward(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient, console_station: StationState
) -> None:
    released, blocked = await held_train(inside), await held_train(inside)
    csrf = await signed_in(browser, STEWARD)
    answer = await browser.post(
        page_of(released),
        data=post_form(csrf, decision="Release", reason="aggregates only, checked"),
        headers=ORIGIN,
    )
    assert answer.status_code == 200, answer.text
    assert "Your decision was recorded." in answer.text
    answer = await browser.post(
        page_of(blocked),
        data=post_form(csrf, decision="Block", reason="row-level data"),
        headers=ORIGIN,
    )
    assert answer.status_code == 200, answer.text
    for reg, decision in ((released, "Released"), (blocked, "Blocked")):
        last = console_station.chain.story(reg.uid)[-1]
        assert (last.kind.value, last.actor) == ("release", "steward-sam")
        assert (last.details["decision"], last.details["steward"]) == (decision, True)
    assert console_station.chain.verify().ok
    again = await browser.post(
        page_of(released),
        data=post_form(csrf, decision="Block", reason="changed my mind"),
        headers=ORIGIN,
    )
    assert "not Held" in again.text


async def test_a_steward_cannot_release_their_own_trains_result(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    reg = await held_train(inside, requested_by=OTHER_STEWARD.username)
    csrf = await signed_in(browser, OTHER_STEWARD)
    answer = await browser.post(
        page_of(reg), data=post_form(csrf, decision="Release", reason="mine"), headers=ORIGIN
    )
    assert "another steward must release" in answer.text


@pytest.mark.parametrize(
    ("token", "headers", "why"),
    [
        (None, ORIGIN, "carries no CSRF token"),
        ("forged", ORIGIN, "CSRF token is not this session"),
        ("valid", {"Origin": "https://evil.example"}, "another site"),
        ("valid", {"Referer": "https://evil.example/page"}, "another site"),
        ("valid", {}, "names no origin"),
    ],
)
async def test_forged_posts_are_refused(
    browser: httpx.AsyncClient,
    inside: httpx.AsyncClient,
    console_station: StationState,
    token: str | None,
    headers: dict[str, str],
    why: str,
) -> None:
    reg = await held_train(inside)
    csrf = await signed_in(browser, STEWARD)
    data: dict[str, str] = {"decision": "Release", "reason": "forged"}
    if token is not None:
        data["csrf_token"] = csrf if token == "valid" else secrets.token_urlsafe(32)
    answer = await browser.post(page_of(reg), data=data, headers=headers)
    assert answer.status_code == 403
    assert why in answer.text
    assert console_station.results.find(reg.namespace, reg.name).release.value == "Held"
    # A token of another session does not do either.
    other = await signed_in(browser, OTHER_STEWARD)
    await signed_in(browser, STEWARD)
    stolen = await browser.post(
        page_of(reg), data=post_form(other, decision="Release", reason="x"), headers=ORIGIN
    )
    assert stolen.status_code == 403


async def test_a_researcher_sees_no_held_result_and_cannot_decide(
    browser: httpx.AsyncClient, inside: httpx.AsyncClient
) -> None:
    reg = await held_train(inside)
    csrf = await signed_in(browser, RESEARCHER)
    listing = await browser.get("/console/results")
    assert reg.name not in listing.text
    assert (await browser.get(page_of(reg))).status_code == 403
    answer = await browser.post(
        page_of(reg), data=post_form(csrf, decision="Release", reason="x"), headers=ORIGIN
    )
    assert answer.status_code == 403
    assert (await browser.get("/console/audit")).status_code == 403
    # RBAC is asked before Kubernetes is read: no approval page, no approval.
    approval_page = f"/console/approvals/{reg.namespace}/{reg.name}"
    assert (await browser.get(approval_page)).status_code == 403
    approve = await browser.post(
        approval_page,
        data=post_form(csrf, decision="Approve", reason="x", spec_hash="a" * 64),
        headers=ORIGIN,
    )
    assert approve.status_code == 403
    assert (await browser.get(f"/console/trains/{reg.namespace}/{reg.name}")).status_code == 403


async def test_audit_shows_the_chain_verified(browser: httpx.AsyncClient) -> None:
    await signed_in(browser, STEWARD)
    page = await browser.get("/console/audit")
    assert page.status_code == 200
    assert "The chain verifies" in page.text


async def test_an_expired_session_signs_the_steward_out(
    browser: httpx.AsyncClient, console_station: StationState
) -> None:
    console = browser._transport.app.state.console  # type: ignore[attr-defined]
    session_id, _ = console.sessions.create(
        SignedIn(STEWARD.username, STEWARD.token, datetime.now(UTC) - timedelta(seconds=1))
    )
    browser.cookies.clear()
    browser.cookies.set(COOKIE_NAME, session_id, domain="console.test")
    answer = await browser.get("/console/results")
    assert answer.status_code == 303
    assert console.sessions.get(session_id) is None


async def test_sign_out_ends_the_session(browser: httpx.AsyncClient) -> None:
    csrf = await signed_in(browser, STEWARD)
    session_id = browser.cookies.get(COOKIE_NAME)
    answer = await browser.post("/console/signout", data=post_form(csrf), headers=ORIGIN)
    assert answer.status_code == 303
    browser.cookies.set(COOKIE_NAME, str(session_id), domain="console.test")
    assert (await browser.get("/console/results")).status_code == 303


async def test_pages_speak_dutch_when_asked(browser: httpx.AsyncClient) -> None:
    await signed_in(browser, STEWARD)
    dutch = await browser.get("/console/results", headers={"Accept-Language": "nl-NL,nl;q=0.9"})
    assert "Uitvoercontrole" in dutch.text and 'lang="nl"' in dutch.text
    chosen = await browser.get("/console/results", params={"lang": "en"})
    assert "Output checking" in chosen.text
    # The language chosen by a link is kept (a cookie) over the browser's.
    assert (
        'lang="en"'
        in (await browser.get("/console/results", headers={"Accept-Language": "nl"})).text
    )
    forged = await browser.post("/console/signout?lang=nl", data={}, headers=ORIGIN)
    assert forged.status_code == 403
    assert "het formulier bevat geen CSRF-token" in forged.text
    assert BASE  # the console is reached over https only


async def test_pages_that_need_kubernetes_say_so_when_it_cannot_be_reached(
    browser: httpx.AsyncClient,
) -> None:
    """This station has no Kubernetes configuration: a page, not a traceback."""
    await signed_in(browser, STEWARD)
    answer = await browser.get("/console/approvals")
    assert answer.status_code == 502
    assert "Kubernetes" in answer.text and "Traceback" not in answer.text


async def test_signing_in_again_replaces_the_session(browser: httpx.AsyncClient) -> None:
    await signed_in(browser, STEWARD)
    before = browser.cookies.get(COOKIE_NAME)
    answer = await sign_in(browser, STEWARD.username, STEWARD.password)
    assert answer.status_code == 303
    browser.cookies.clear()
    browser.cookies.set(COOKIE_NAME, str(before), domain="console.test")
    assert (await browser.get("/console/results")).status_code == 303
