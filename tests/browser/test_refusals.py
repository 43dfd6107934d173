"""What the console refuses, in Chromium: a signed-in researcher every steward's page and
action, a steward's form posted without its CSRF token or with another one, and a form posted
to the console from another site. Nothing refused leaves a decision behind.
"""

import re
from typing import Final

import pytest
from playwright.async_api import Page, Request, Route, expect

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.controlplane.processes import free_port
from pht_sandbox.stations import REQUEST_NAMESPACE

from .browserkit import (
    PATIENTS,
    ConsoleStation,
    look_at,
    seed_row_level_result,
    sign_in,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

REFUSED_TITLE: Final = "This cannot be done"
FROM_ANOTHER_SITE: Final = "the form was posted from another site"
#: The field a console form carries its CSRF token in (the decision form's, not sign-out's).
DECISION_TOKEN: Final = "form.stacked input[name=csrf_token]"


async def approvals_of(station: ConsoleStation, train: str) -> list[Obj]:
    path = f"/apis/{constants.GROUP_VERSION}/namespaces/{REQUEST_NAMESPACE}/trainapprovals"
    answer = await station.kube_request("GET", path)
    assert answer.status_code == 200, answer.text
    items: list[Obj] = answer.json()["items"]
    return [a for a in items if a["spec"]["train"]["name"] == train]


async def test_a_researcher_is_refused_every_stewards_page_and_action(
    station: ConsoleStation, page: Page, waiting_train: str
) -> None:
    await seed_row_level_result(station, "ages-per-patient", PATIENTS)
    await sign_in(page, station, station.researcher)
    await expect(page.get_by_text(f"Signed in as {station.researcher.username}")).to_be_visible()
    await expect(page.get_by_text("No Train waits for your approval.")).to_be_visible()
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert csrf

    answer = await page.goto(station.console(f"/approvals/{REQUEST_NAMESPACE}/{waiting_train}"))
    assert answer is not None and answer.status == 403
    await expect(page.get_by_role("alert")).to_contain_text(
        f"{station.researcher.username} may not approve train {REQUEST_NAMESPACE}/{waiting_train}"
    )
    await look_at(page, "refused-researcher")
    # Even with their own session's valid CSRF token, a decision is refused and not recorded.
    posted = await page.request.post(
        station.console(f"/approvals/{REQUEST_NAMESPACE}/{waiting_train}"),
        form={"csrf_token": csrf, "decision": "Approve", "reason": "mine", "spec_hash": "0"},
        headers={"Origin": station.urls.external},
    )
    assert posted.status == 403, await posted.text()
    assert await approvals_of(station, waiting_train) == []

    await page.goto(station.console("/results"))
    await expect(page.get_by_text("No result waits for you.")).to_be_visible()
    answer = await page.goto(station.console(f"/results/{REQUEST_NAMESPACE}/ages-per-patient"))
    assert answer is not None and answer.status == 403
    posted = await page.request.post(
        station.console(f"/results/{REQUEST_NAMESPACE}/ages-per-patient"),
        form={"csrf_token": csrf, "decision": "Release", "reason": "mine"},
        headers={"Origin": station.urls.external},
    )
    assert posted.status == 403, await posted.text()
    answer = await page.goto(station.console("/audit"))
    assert answer is not None and answer.status == 403

    # The steward still finds the result held.
    await sign_in(page, station, station.steward)
    await page.goto(station.console(f"/results/{REQUEST_NAMESPACE}/ages-per-patient"))
    await expect(page.locator("dt:text-is('Release state') + dd")).to_have_text("Held")


def tamper_name(tamper: str) -> str:
    return "csrf-removed" if "remove" in tamper else "csrf-replaced"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("e => e.remove()", "the form carries no CSRF token"),
        ("e => { e.value = 'A'.repeat(43); }", "the form's CSRF token is not this session's"),
    ],
    ids=["without-token", "other-token"],
)
async def test_a_steward_form_with_a_missing_or_wrong_csrf_token_is_refused(
    station: ConsoleStation, page: Page, waiting_train: str, tamper: str, reason: str
) -> None:
    await sign_in(page, station, station.steward)
    await page.goto(station.console(f"/approvals/{REQUEST_NAMESPACE}/{waiting_train}"))
    await page.locator(DECISION_TOKEN).evaluate(tamper)
    await page.get_by_label("Reason").fill("forged")
    async with page.expect_response(re.compile(f"/approvals/.*/{waiting_train}$")) as sent:
        await page.get_by_role("button", name="Approve").click()
    assert (await sent.value).status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text(REFUSED_TITLE)
    await expect(page.get_by_role("alert")).to_contain_text(reason)
    await look_at(page, f"refused-{tamper_name(tamper)}")
    assert await approvals_of(station, waiting_train) == []
    train = await station.get_train(waiting_train)
    assert train["status"]["summary"] == "AwaitingApproval"


def forged_page(action: str, fields: dict[str, str]) -> str:
    hidden = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (
        "<!doctype html><title>Win a prize</title>"
        f'<form method="post" action="{action}">{hidden}<button>Claim</button></form>'
    )


async def test_a_form_posted_from_another_site_is_refused(
    station: ConsoleStation, page: Page, waiting_train: str
) -> None:
    """Another site on the same machine (same-site, so the browser sends the session cookie)
    posts an approval: without the token, and even with the steward's real token."""
    await sign_in(page, station, station.steward)
    await page.goto(station.console(f"/approvals/{REQUEST_NAMESPACE}/{waiting_train}"))
    token = await page.locator(DECISION_TOKEN).get_attribute("value")
    spec_hash = await page.locator("input[name=spec_hash]").get_attribute("value")
    assert token and spec_hash
    action = station.console(f"/approvals/{REQUEST_NAMESPACE}/{waiting_train}")
    attacker = f"http://127.0.0.1:{free_port()}/"
    for fields in (
        {"decision": "Approve", "reason": "forged", "spec_hash": spec_hash},
        {"decision": "Approve", "reason": "forged", "spec_hash": spec_hash, "csrf_token": token},
    ):
        html = forged_page(action, fields)

        async def serve(route: Route, request: Request, html: str = html) -> None:
            await route.fulfill(status=200, content_type="text/html", body=html)

        await page.route(attacker, serve)
        await page.goto(attacker)
        async with page.expect_response(action) as sent:
            await page.get_by_role("button", name="Claim").click()
        assert (await sent.value).status == 403
        await expect(page.get_by_role("alert")).to_contain_text(
            "the form was posted from another site"
        )
        await page.unroute(attacker)
    assert await approvals_of(station, waiting_train) == []
