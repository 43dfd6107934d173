"""One station in a box with the steward console for all browser tests, and Debian's Chromium.

The station (emulated Kubernetes API, real operator, real station API with the console's local
login, trains as local processes) starts once for these tests and stops after the last of them;
the example StationPolicy is applied. Chromium starts once, headless, with a fresh profile in a
temporary directory; each test gets a new tab with no cookies, 1366×768.
"""

import tempfile
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, async_playwright

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.stations import StationConfig

from .browserkit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PATIENTS,
    POLICY_FILE,
    TRAIN_FILE,
    VIEWPORT,
    WAITING_TRAIN,
    ConsoleStation,
    load_yaml,
)


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ConsoleStation]:
    config = StationConfig("browser", tmp_path_factory.mktemp("box"), patients=PATIENTS)
    started = ConsoleStation(config)
    async with started:
        await started.apply(load_yaml(POLICY_FILE), constants.POLICY_PLURAL)
        yield started


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser() -> AsyncIterator[BrowserContext]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}: run `make tools` "
            "(as root) or apt-get install -y chromium",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory(prefix="pht-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=list(CHROMIUM_ARGS),
                viewport=VIEWPORT,
                locale="en-GB",
                color_scheme="light",
            )
            try:
                yield context
            finally:
                await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    await browser.clear_cookies()
    tab = await browser.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        await tab.close()


def _awaiting_approval(train: Obj) -> bool:
    return (train.get("status") or {}).get("summary") == "AwaitingApproval"


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def waiting_train(station: ConsoleStation) -> str:
    """A Train that waits for a steward for the whole session (nobody approves it)."""
    train = load_yaml(TRAIN_FILE)
    train["metadata"]["name"] = WAITING_TRAIN
    await station.apply(train, constants.TRAIN_PLURAL)
    waiting = await station.wait_for(WAITING_TRAIN, _awaiting_approval, 60)
    assert _awaiting_approval(waiting), waiting.get("status")
    return WAITING_TRAIN
