"""After an identity provider's redirect, the console goes on through a page of its own, so that
the browser sends the new session's SameSite=Strict cookie with the next request."""

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from consolekit import BASE
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from pht_station_api.app import create_external_app
from pht_station_api.console.pages import Console
from pht_station_api.console.sessions import COOKIE_NAME, SessionStore
from pht_station_api.console.signin import SignedIn
from pht_station_api.state import StationState


class ProviderSignIn:
    """Stands in for an identity provider whose callback is a cross-site GET redirect."""

    label = "provider"

    async def start(self, request: Request, return_to: str) -> Response:
        return RedirectResponse("https://login.example/authorize", status_code=303)

    async def finish(self, request: Request) -> SignedIn:
        return SignedIn("steward@station.local", "a-token", datetime.now(UTC) + timedelta(hours=1))

    def forget(self, response: Response) -> None:
        response.delete_cookie("provider-pending", path="/console/signin/callback")


@pytest.mark.parametrize(
    ("asked", "target"),
    [
        ("/console/results", "/console/results"),
        ("//evil.example/console/", "/console/approvals"),
        ("https://evil.example/", "/console/approvals"),
        ('/console/x"><script>alert(1)</script>', None),
    ],
)
async def test_a_provider_callback_goes_on_through_a_console_page(
    console_station: StationState, asked: str, target: str | None
) -> None:
    app = create_external_app(console_station)
    app.state.console = Console(SessionStore(10, 3600), ProviderSignIn(), ("pht-requests",))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        answer = await client.get("/console/signin/callback", params={"return_to": asked})
    assert answer.status_code == 200
    cookies = answer.headers.get_list("set-cookie")
    cookie = next(c for c in cookies if c.startswith(f"{COOKIE_NAME}="))
    assert "samesite=strict" in cookie.lower()
    # The sign-in's own pending cookie is cleared once it has served.
    assert any(c.startswith('provider-pending=""') and "max-age=0" in c.lower() for c in cookies)
    refresh = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]*)">', answer.text)
    assert refresh is not None
    assert "<script>" not in answer.text
    if target is not None:
        assert refresh[1] == target
    assert answer.headers["content-security-policy"].startswith("default-src")
