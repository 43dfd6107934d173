"""A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok),
started once per test run from the binaries `make tools` builds.

Missing binaries are an error with the reason, never a skip: these tests are what proves the
operator, the chart and the CRDs against a real API server.
"""

from collections.abc import Iterator

import pytest

from pht_sandbox.controlplane.binaries import locate
from pht_sandbox.controlplane.cluster import ControlPlane
from pht_sandbox.controlplane.processes import log_tail

_PLANE: list[ControlPlane] = []


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), locate(build=False))
    _PLANE.append(plane)
    plane.start()
    yield plane
    plane.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _PLANE and "control_plane" in getattr(item, "fixturenames", ()):
        for component in _PLANE[0].components:
            report.sections.append((f"{component.name} log", log_tail(component.log, 40)))
