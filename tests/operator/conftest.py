"""Fixtures: the emulated cluster, the simulated Job controller, the station API test double
and the real operator (Kopf) running in-process against them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from operator_harness import RUN_NS, STATION_NS, Harness, operator_settings, run_in_thread
from stationapi_double import StationApiDouble

from pht_sandbox.emulator import NAMESPACES, ClusterEmulator, write_kubeconfig
from pht_sandbox.jobcontroller import JobController


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Harness]:
    """Cluster + Job controller + station API double, no operator yet."""
    cluster = ClusterEmulator(bookmark_interval=1.0)
    station = StationApiDouble()
    async with cluster.serving() as url, station.serving() as station_url:
        jobs = JobController(cluster)
        for namespace in (STATION_NS, RUN_NS):
            await cluster.create_object(NAMESPACES, {"metadata": {"name": namespace}})
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
        harness = Harness(cluster, jobs, station, operator_settings(station_url), kubeconfig, url)
        try:
            yield harness
        finally:
            await jobs.stop()
            await cluster.close_watches()


@pytest.fixture
async def harness(bed: Harness) -> AsyncIterator[Harness]:
    """The bed with the real operator running."""
    async with run_in_thread(bed) as running:
        yield running
