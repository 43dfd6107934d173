"""Shared by the gateway attacks: a started station, its two apps, and audit helpers.

The station helpers live with the station API tests; this module puts them on the path (the
security folder has no conftest of its own for this) and adds what the attacks read back.
"""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

_STATION_TESTS = Path(__file__).resolve().parents[1] / "station_api"
for folder in (_STATION_TESTS, _STATION_TESTS / "fuzz"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from stationkit import (  # noqa: E402
    client_for,
    make_store,
    started_station,
    station_settings,
)

from pht_contract.wire import ProvenanceKind  # noqa: E402
from pht_station_api.app import create_external_app, create_internal_app  # noqa: E402
from pht_station_api.state import StationState  # noqa: E402


@pytest.fixture(scope="module")
def gateway_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("gateway-cohort") / "store")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(
    gateway_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StationState]:
    settings = station_settings(gateway_store, tmp_path_factory.mktemp("gateway-state"))
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


def query_records(station: StationState, uid: str) -> list[dict[str, object]]:
    """The details of every audited query of one train, oldest first."""
    return [
        dict(record.details)
        for record in station.chain.story(uid)
        if record.kind == ProvenanceKind.QUERY
    ]
