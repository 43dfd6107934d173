"""A steward's day in the console, in Chromium: sign in with the local login, approve a Train
with the keyboard alone and see it start, check its held result and release it (the requester
can then download it), and block another result that carries row-level data and a plot.

Every page on the way is photographed at 1366×768 and checked: labelled controls, AA contrast,
no sideways scrolling, no value of the row-level table.
"""

import re
from typing import Final

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.demo import held_for_steward
from pht_sandbox.stations import REQUEST_NAMESPACE

from .browserkit import (
    FOCUS_OUTLINE_JS,
    MIN_FOCUS_CONTRAST,
    PATIENTS,
    PLOT_SIZE,
    PLOT_TITLE,
    TRAIN_FILE,
    ConsoleStation,
    contrast_ratio,
    load_yaml,
    look_at,
    parse_rgb,
    seed_row_level_result,
    sign_in,
    state_shown,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

TRAIN: Final = str(load_yaml(TRAIN_FILE)["metadata"]["name"])
ROW_LEVEL: Final = "cohort-ages"
STARTED: Final = ("Queued", "Running", "AwaitingRelease", "Succeeded")
APPROVE_REASON: Final = "Purpose, queries and image match the study protocol."
RELEASE_REASON: Final = "Survival by stage, every count at least 5, no row-level data."
BLOCK_REASON: Final = "Per-patient ages are row-level data; not for release."
LOCAL_LOGIN_LABEL: Final = "Local login for the station in a box (127.0.0.1 only)"
#: Tab presses that may be needed to reach the decision on the approval page.
MAX_TABS: Final = 60


def awaiting_approval(train: Obj) -> bool:
    return (train.get("status") or {}).get("summary") == "AwaitingApproval"


async def requester_download(station: ConsoleStation, name: str) -> httpx.Response:
    """The requester asks for the released result, as ``pht result`` does."""
    return await station.http.get(
        f"{station.urls.external}/results/{REQUEST_NAMESPACE}/{name}",
        headers={"Authorization": f"Bearer {station.researcher_token}"},
    )


def release_state(page: Page) -> Locator:
    return page.locator("dt:text-is('Release state') + dd")


async def focused(page: Page) -> dict[str, str]:
    found: dict[str, str] = await page.evaluate(FOCUS_OUTLINE_JS)
    return found


async def tab_to(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has the keyboard focus."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} is not reachable with {MAX_TABS} presses of Tab")


async def assert_visible_focus(page: Page) -> None:
    """The focused control has an outline a steward can see (AA: 3:1 against its
    surroundings)."""
    focus = await focused(page)
    assert focus["outlineStyle"] != "none" and float(focus["width"].rstrip("px")) >= 2, focus
    ratio = contrast_ratio(parse_rgb(focus["outline"]), parse_rgb(focus["around"]))
    assert ratio >= MIN_FOCUS_CONTRAST, f"focus outline {ratio:.2f}:1 on {focus}"


async def approve_with_the_keyboard(page: Page) -> None:
    # The first Tab shows the link that skips the navigation.
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await tab_to(page, "textarea#reason")
    await assert_visible_focus(page)
    await page.keyboard.type(APPROVE_REASON)
    await page.keyboard.press("Tab")
    button = await focused(page)
    assert button["tag"] == "button" and button["text"] == "Approve", button
    await assert_visible_focus(page)
    await page.keyboard.press("Enter")
    await page.wait_for_load_state()


@pytest.mark.timeout(300)
async def test_a_stewards_day_in_the_console(station: ConsoleStation, page: Page) -> None:
    await station.apply(load_yaml(TRAIN_FILE), constants.TRAIN_PLURAL)
    assert awaiting_approval(await station.wait_for(TRAIN, awaiting_approval, 60))
    await seed_row_level_result(station, ROW_LEVEL, PATIENTS)

    # Signing in: the local login says what it is; the console opens on pending approvals.
    await page.goto(station.console("/"))
    await expect(page).to_have_url(re.compile(r"/console/signin"))
    await expect(page.get_by_text(LOCAL_LOGIN_LABEL)).to_be_visible()
    await look_at(page, "signin")
    await sign_in(page, station, station.steward)
    await expect(page).to_have_url(station.console("/approvals"))
    await expect(page.get_by_text(f"Signed in as {station.steward.username}")).to_be_visible()
    await look_at(page, "approvals")

    # One approval: what the Train asks for, decided with Tab, typing and Enter only.
    await page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{TRAIN}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Approval of Train {TRAIN}")
    await expect(page.get_by_text("allowed by the policy")).to_be_visible()
    await look_at(page, "approval")
    await page.get_by_role("heading", name="Your decision").evaluate("e => e.scrollIntoView()")
    await look_at(page, "approval-decision")
    await approve_with_the_keyboard(page)
    await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
    await expect(page.get_by_text(f"{station.steward.username}: Approve")).to_be_visible()

    # The Train starts: the Trains page shows it leave AwaitingApproval.
    await page.get_by_role("link", name="Trains", exact=True).click()
    await state_shown(page, TRAIN, STARTED, 60)
    held = await station.wait_for(TRAIN, held_for_steward, 180)
    assert held_for_steward(held), held.get("status")
    await state_shown(page, TRAIN, ("AwaitingRelease",), 30)
    await look_at(page, "trains")
    assert (await requester_download(station, TRAIN)).status_code != 200

    # Output checking: both held results; the Train's preview is what would leave.
    await page.get_by_role("link", name="Output checking").click()
    await expect(page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{TRAIN}")).to_be_visible()
    await expect(page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{ROW_LEVEL}")).to_be_visible()
    await look_at(page, "results")
    await page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{TRAIN}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Result of Train {TRAIN}")
    preview = page.locator("table.preview").first
    await expect(preview).to_be_visible()
    await expect(preview.get_by_role("row")).not_to_have_count(0)
    await look_at(page, "result")
    await page.get_by_label("Reason").fill(RELEASE_REASON)
    await page.get_by_role("button", name="Release").click()
    await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
    await expect(release_state(page)).to_have_text("Released")

    # The requester can now download it.
    download = await requester_download(station, TRAIN)
    assert download.status_code == 200, download.text
    assert download.json()["tables"] or download.json()["aggregates"]

    # The result with a row-level table: its values appear nowhere; the steward blocks it.
    await page.get_by_role("link", name="Output checking").click()
    await page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{ROW_LEVEL}").click()
    await look_at(page, "result-row-level")
    # Its plot: the canonical PNG from the console's own route, with its size beside it.
    picture = page.get_by_role("img", name=PLOT_TITLE)
    await picture.scroll_into_view_if_needed()
    await expect(picture).to_be_visible()
    loaded = await picture.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert loaded == [True, *PLOT_SIZE], loaded
    await expect(page.get_by_text(f"{PLOT_SIZE[0]} × {PLOT_SIZE[1]} pixels")).to_be_visible()
    await look_at(page, "result-plot")
    await page.get_by_label("Reason").fill(BLOCK_REASON)
    await page.get_by_role("button", name="Block").click()
    await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
    await expect(release_state(page)).to_have_text("Blocked")
    assert (await requester_download(station, ROW_LEVEL)).status_code != 200
    await page.get_by_role("link", name="Output checking").click()
    await expect(page.get_by_role("link", name=f"{REQUEST_NAMESPACE}/{ROW_LEVEL}")).to_have_count(0)

    # The Train's provenance: the approval and the release, each by the steward.
    await page.goto(station.console(f"/trains/{REQUEST_NAMESPACE}/{TRAIN}"))
    records = page.locator("ol.timeline > li")
    approval = records.filter(has=page.locator("strong", has_text=re.compile("^approval$")))
    await expect(approval).to_have_count(1)
    release = records.filter(has_text=f"by {station.steward.username}")
    await expect(release).to_have_count(1)
    await expect(release.get_by_role("definition")).to_contain_text(["Released"])
    await look_at(page, "timeline")
    await page.get_by_role("link", name="Audit").click()
    await expect(page.get_by_text("The chain verifies")).to_be_visible()
    await look_at(page, "audit")

    # Signing out ends the session: the console asks to sign in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/console/signin"))
    await page.goto(station.console("/results"))
    await expect(page).to_have_url(re.compile(r"/console/signin\?return_to=/console/results"))
