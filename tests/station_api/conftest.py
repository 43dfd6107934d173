"""Fixtures for station API tests: a small generated cohort, a started station, clients.

The station is real (embedded Oxigraph, killable worker processes, provenance chain); only
human identities use the local identity file (the station-in-a-box mode). A station is started
once per test module (workers take a moment to spawn); each test registers its own train.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from stationkit import client_for, make_store, started_station, station_settings

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.state import StationState


@pytest.fixture(scope="session")
def cohort_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("cohort") / "store")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(
    cohort_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    settings = station_settings(cohort_store, tmp_path_factory.mktemp("state"))
    async with started_station(settings) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def internal(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_internal_app(station), "http://internal.test") as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def external(station: StationState) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_external_app(station), "http://fdp.test") as client:
        yield client
