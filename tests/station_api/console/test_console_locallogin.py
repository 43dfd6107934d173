"""The local login serves loopback only, needs local identities and stops password guessing;
without any sign-in the console says how one is enabled."""

from pathlib import Path

import pytest
from consolekit import BASE, ORIGIN, OTHER_STEWARD, STEWARD, hidden, write_people
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from pht_station_api.console import mount_console
from pht_station_api.console.locallogin import (
    FAILURE_WINDOW_SECONDS,
    LOGIN_COOKIE,
    MAX_FAILURES,
    MAX_FAILURES_PER_NAME,
    FailedSignIns,
    LocalSignIn,
    hash_password,
    is_loopback,
)
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


def _local_console(tmp_path: Path) -> tuple[TestClient, LocalSignIn]:
    app = FastAPI()
    mount_console(app, _settings(tmp_path))
    sign_in = app.state.console.sign_in
    assert isinstance(sign_in, LocalSignIn)
    return TestClient(app, base_url=BASE, follow_redirects=False), sign_in


def _try(client: TestClient, username: str, password: str) -> Response:
    client.cookies.clear()
    form = client.get("/console/signin")
    return client.post(
        "/console/signin/callback",
        data={
            "form_token": hidden(form.text, "form_token"),
            "return_to": "/console/approvals",
            "username": username,
            "password": password,
        },
        headers=ORIGIN,
    )


def test_a_successful_sign_in_clears_the_login_forms_cookie(tmp_path: Path) -> None:
    client, _ = _local_console(tmp_path)
    with client:
        answer = _try(client, STEWARD.username, STEWARD.password)
    assert answer.status_code == 303
    cleared = [c for c in answer.headers.get_list("set-cookie") if c.startswith(LOGIN_COOKIE)]
    assert len(cleared) == 1 and "max-age=0" in cleared[0].lower()


@pytest.mark.parametrize("username", [STEWARD.username, "no-such-user"])
def test_guessing_a_password_stops_after_five_failures(tmp_path: Path, username: str) -> None:
    """A known and an unknown name are refused alike (the refusal tells nobody which exist),
    and once refused, not even the right password is tried."""
    client, sign_in = _local_console(tmp_path)
    now = [1000.0]
    sign_in.failures = FailedSignIns(clock=lambda: now[0])
    with client:
        for _ in range(MAX_FAILURES_PER_NAME):
            assert _try(client, username, "guess").status_code == 401
        refused = _try(client, username, STEWARD.password)
        assert refused.status_code == 429
        assert "too many failed sign-ins for this user name" in refused.text
        assert "try again in 15 minute(s)" in refused.text
        # Another name is not held up by this one.
        assert _try(client, OTHER_STEWARD.username, OTHER_STEWARD.password).status_code == 303
        now[0] += FAILURE_WINDOW_SECONDS
        if username == STEWARD.username:
            assert _try(client, username, STEWARD.password).status_code == 303
        else:
            assert _try(client, username, "guess").status_code == 401


def test_guessing_across_many_names_stops_the_whole_login(tmp_path: Path) -> None:
    client, sign_in = _local_console(tmp_path)
    now = [0.0]
    sign_in.failures = FailedSignIns(clock=lambda: now[0])
    with client:
        for index in range(MAX_FAILURES):
            now[0] += 1
            assert _try(client, f"name-{index}", "guess").status_code == 401
        refused = _try(client, STEWARD.username, STEWARD.password)
        assert refused.status_code == 429
        assert "the local login of this station" in refused.text
        # The oldest failure leaves the window first, and then one attempt is allowed again.
        now[0] = 1 + FAILURE_WINDOW_SECONDS
        assert _try(client, STEWARD.username, STEWARD.password).status_code == 303


def test_a_correct_password_clears_that_names_failures() -> None:
    failures = FailedSignIns(clock=lambda: 0.0)
    for _ in range(MAX_FAILURES_PER_NAME - 1):
        failures.failed("sam")
    failures.succeeded("sam")
    failures.failed("sam")
    assert failures.refusal("sam") is None
