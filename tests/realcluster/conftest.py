"""A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok),
started once per test run from the binaries `make tools` builds. Its API server also trusts a
real OpenID provider (oidc-provider on Node.js, also from `make tools`), started first.

Missing binaries are an error with the reason, never a skip: these tests are what proves the
operator, the chart and the CRDs against a real API server.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from realcluster_kube import CHART, RELEASE, SYSTEM_NS, VALUES, VOLUME_SIZES, run, static_volume

from pht_sandbox.controlplane.authentication import OidcTrust
from pht_sandbox.controlplane.binaries import locate
from pht_sandbox.controlplane.cluster import ControlPlane
from pht_sandbox.controlplane.oidcprovider import (
    CLI_CLIENT_ID,
    CONSOLE_CLIENT_ID,
    OpenIdProvider,
    hospital_provider,
)
from pht_sandbox.controlplane.processes import log_tail

_PLANE: list[ControlPlane] = []
#: Where the console's sign-in comes back to (the provider only redirects a browser there).
CONSOLE_CALLBACK = "https://station.example/console/signin/callback"


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    """The hospital's OpenID provider: two stewards, a researcher and someone with no role."""
    provider = hospital_provider(tmp_path_factory.mktemp("oidc-provider"), CONSOLE_CALLBACK)
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OpenIdProvider
) -> Iterator[ControlPlane]:
    # The API server would start without the provider too and retry its discovery about every
    # 10 s; starting the provider first makes its tokens work from the first request.
    trust = OidcTrust(oidc_provider.issuer, oidc_provider.ca, (CLI_CLIENT_ID, CONSOLE_CLIENT_ID))
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), locate(build=False), (trust,))
    _PLANE.append(plane)
    plane.start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def chart(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart installed once per test run with the real helm, as a cluster admin would
    (release `pht` in `pht-system`, VALUES); yields the values file used."""
    work = tmp_path_factory.mktemp("chart")
    values = work / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    with control_plane.client() as admin:
        for i, size in enumerate(VOLUME_SIZES):
            made = admin.post("/api/v1/persistentvolumes", json=static_volume(f"pht-pv-{i}", size))
            assert made.status_code in (201, 409), made.text
    installed = run(
        "helm",
        ["install", RELEASE, str(CHART), "-n", SYSTEM_NS, "--create-namespace", "-f", str(values)],
        control_plane.kubeconfigs["admin"],
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    return values


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _PLANE and "control_plane" in getattr(item, "fixturenames", ()):
        for component in _PLANE[0].components:
            report.sections.append((f"{component.name} log", log_tail(component.log, 40)))
