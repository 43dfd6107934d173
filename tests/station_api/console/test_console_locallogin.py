"""The local login serves loopback only and needs local identities; without any sign-in the
console says how one is enabled."""

from pathlib import Path

import pytest
from consolekit import write_people
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pht_station_api.console import mount_console
from pht_station_api.console.locallogin import hash_password, is_loopback
from pht_station_api.settings import Settings


def _settings(tmp_path: Path, **values: object) -> Settings:
    identities, logins = write_people(tmp_path)
    defaults: dict[str, object] = {
        "state_dir": tmp_path,
        "identity_mode": "local",
        "local_identities_file": identities,
        "console_local_login_file": logins,
        "external_host": "127.0.0.1",
    }
    return Settings(**(defaults | values))


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "station.example.org"])
def test_the_local_login_refuses_a_listener_beyond_loopback(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        mount_console(FastAPI(), _settings(tmp_path, external_host=host))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


def test_the_local_login_needs_local_identities(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IDENTITY_MODE=local"):
        mount_console(FastAPI(), _settings(tmp_path, identity_mode="kubernetes"))


def test_without_a_sign_in_the_console_says_how_to_enable_one(tmp_path: Path) -> None:
    app = FastAPI()
    mount_console(app, _settings(tmp_path, console_local_login_file=None))
    with TestClient(app, base_url="https://console.test") as client:
        answer = client.get("/console/signin")
    assert answer.status_code == 503
    assert "OpenID Connect" in answer.text


def test_password_hashes_are_salted_scrypt() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    n, r, p, _salt, _digest = first.split("$")
    assert (int(n), int(r), int(p)) == (2**14, 8, 1)
