"""The console's local login is for the station in a box only: no rendering of the chart sets
it, and the chart refuses to render when extra environment variables try to."""

import pytest

from .rendering import PROFILES, helm_template, render_profile

LOCAL_LOGIN = "PHT_API_CONSOLE_LOCAL_LOGIN_FILE"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_no_profile_enables_the_local_login(profile: str) -> None:
    assert "CONSOLE_LOCAL_LOGIN" not in render_profile(profile).upper()


@pytest.mark.parametrize("name", [LOCAL_LOGIN, LOCAL_LOGIN.lower()])
def test_extra_env_cannot_enable_the_local_login(name: str) -> None:
    result = helm_template(
        sets={"stationApi.extraEnv[0].name": name, "stationApi.extraEnv[0].value": "/tmp/logins"}
    )
    assert result.returncode != 0
    assert f"stationApi.extraEnv: {name} is set through console.*" in result.stderr
    assert "the local login exists for the station in a box only" in result.stderr


def test_other_extra_env_still_renders() -> None:
    result = helm_template(
        sets={
            "stationApi.extraEnv[0].name": "PHT_API_QUERY_WORKERS",
            "stationApi.extraEnv[0].value": "3",
        }
    )
    assert result.returncode == 0, result.stderr
    assert "PHT_API_QUERY_WORKERS" in result.stdout
