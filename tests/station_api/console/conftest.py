"""A real station (store, chain, result archive) with the console's local login, per module."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from consolekit import BASE, write_people
from stationkit import client_for, started_station, station_settings

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.state import StationState


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console_station(
    cohort_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    state_dir = tmp_path_factory.mktemp("console-state")
    identities, logins = write_people(state_dir)
    settings = station_settings(
        cohort_store,
        state_dir,
        local_identities_file=identities,
        console_local_login_file=logins,
        external_host="127.0.0.1",
        public_base_url=BASE,
    )
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def inside(console_station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(console_station), "http://internal.test") as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(console_station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_external_app(console_station), BASE) as client:
        yield client
