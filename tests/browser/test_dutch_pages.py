"""The console in Dutch, in Chromium: the language link switches every page, which still fits a
laptop screen with labelled controls and AA contrast (Dutch words run longer)."""

import pytest
from playwright.async_api import Page, expect

from pht_sandbox.stations import REQUEST_NAMESPACE

from .browserkit import ConsoleStation, look_at, sign_in

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


async def test_every_page_reads_in_dutch(
    station: ConsoleStation, page: Page, waiting_train: str
) -> None:
    await sign_in(page, station, station.steward)
    await page.get_by_role("link", name="Nederlands").click()
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    for path, name in (
        ("/approvals", "approvals"),
        (f"/approvals/{REQUEST_NAMESPACE}/{waiting_train}", "approval"),
        ("/results", "results"),
        ("/trains", "trains"),
        (f"/trains/{REQUEST_NAMESPACE}/{waiting_train}", "timeline"),
        ("/audit", "audit"),
    ):
        answer = await page.goto(station.console(path))
        assert answer is not None and answer.status == 200, path
        # The choice is kept: no page falls back to English.
        await expect(page.locator("html")).to_have_attribute("lang", "nl")
        await look_at(page, f"nl-{name}")
