"""A real OpenID provider (oidc-provider on Node.js, from `make tools`) on 127.0.0.1 over HTTPS,
with two stewards, a researcher and a person with no role at the station; and a second provider
with the same clients at another address, an issuer nobody here trusts.

A provider that cannot start is an error with the reason, never a skip.
"""

from collections.abc import Iterator

import pytest

from pht_sandbox.controlplane.oidcprovider import OpenIdProvider, hospital_provider

CONSOLE_CALLBACK = "https://station.example/console/signin/callback"


def _started(provider: OpenIdProvider) -> Iterator[OpenIdProvider]:
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    yield from _started(hospital_provider(tmp_path_factory.mktemp("idp"), CONSOLE_CALLBACK))


@pytest.fixture(scope="session")
def other_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    yield from _started(hospital_provider(tmp_path_factory.mktemp("idp-other"), CONSOLE_CALLBACK))
