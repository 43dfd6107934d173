"""The console's OpenID Connect sign-in against a real provider: the flow that works, and every
way to cheat it ending in SignInFailed with a reason (never another exception)."""

import base64
import json
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from identity_tokens import (
    claims_of,
    hmac_signed,
    signed_by_provider,
    signed_by_stranger,
    unsigned,
)
from starlette.requests import Request
from starlette.responses import Response

from pht_sandbox.controlplane.oidcprovider import (
    CONSOLE_CLIENT_ID,
    OpenIdProvider,
    browser_sign_in,
)
from pht_station_api.console.oidc import PENDING_COOKIE, PENDING_SECONDS, OidcSignIn, oidc_sign_in
from pht_station_api.console.signin import SignInFailed
from pht_station_api.settings import Settings

Forge = Callable[[dict[str, Any]], str]


class SwapIdToken(httpx.AsyncBaseTransport):
    """Passes everything to the real provider, but replaces the ID token in the token
    response with a forged one (what an attacker in the middle would try)."""

    def __init__(self, ca: Path, forge: Forge) -> None:
        self._inner = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=str(ca)))
        self._forge = forge

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != "/token":
            return response
        await response.aread()
        body = json.loads(response.content)
        body["id_token"] = self._forge(claims_of(body["id_token"]))
        return httpx.Response(response.status_code, json=body)


def console(
    provider: OpenIdProvider, transport: httpx.AsyncBaseTransport | None = None
) -> OidcSignIn:
    client = provider.client(CONSOLE_CLIENT_ID)
    assert client.secret is not None
    return OidcSignIn(
        issuer=provider.issuer,
        client_id=client.client_id,
        client_secret=client.secret,
        redirect_url=client.redirect_uris[0],
        ca_file=provider.ca,
        transport=transport,
    )


def request(url: str = "https://station.example/console/", cookie: str | None = None) -> Request:
    parts = urlsplit(url)
    headers = [(b"host", b"station.example")]
    if cookie is not None:
        headers.append((b"cookie", f"{PENDING_COOKIE}={cookie}".encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "server": ("station.example", 443),
        "path": parts.path,
        "query_string": parts.query.encode(),
        "headers": headers,
    }
    return Request(scope)


async def begin(signin: OidcSignIn, return_to: str = "/console/") -> tuple[str, str]:
    """Start a sign-in: the provider URL the browser is sent to and the cookie it got."""
    response = await signin.start(request(), return_to)
    assert response.status_code == 303
    cookie_header = response.headers["set-cookie"]
    assert "httponly" in cookie_header.lower() and "secure" in cookie_header.lower()
    cookie = cookie_header.split(";")[0].split("=", 1)[1]
    return response.headers["location"], cookie


def state_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["state"][0]


def at_provider(provider: OpenIdProvider, location: str, role: str = "steward") -> str:
    person = provider.people[role]
    return browser_sign_in(location, provider.issuer, provider.ca, person.username, person.password)


async def test_a_steward_signs_in_and_gets_an_id_token_for_the_console(
    provider: OpenIdProvider,
) -> None:
    signin = console(provider)
    location, cookie = await begin(signin)
    sent = parse_qs(urlsplit(location).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
    assert sent["state"][0] and sent["nonce"][0] and "client_secret" not in sent
    callback = at_provider(provider, location)
    assert callback.startswith("https://station.example/console/signin/callback?")

    signed_in = await signin.finish(request(callback, cookie))

    assert signed_in.username == "erin@hospital.example"
    claims = claims_of(signed_in.token)
    assert (claims["iss"], claims["aud"]) == (provider.issuer, CONSOLE_CLIENT_ID)
    assert claims["groups"] == ["pht-stewards"] and claims["nonce"] == sent["nonce"][0]
    assert signed_in.account == f"{provider.issuer} {claims['sub']}"
    remaining = (signed_in.expires_at - datetime.now(UTC)).total_seconds()
    assert 3500 < remaining <= 3600


async def test_the_page_a_steward_asked_for_comes_back_with_the_sign_in(
    provider: OpenIdProvider,
) -> None:
    signin = console(provider)
    asked = "/console/results/pht-requests/km-survival-by-stage"
    location, cookie = await begin(signin, asked)
    signed_in = await signin.finish(request(at_provider(provider, location), cookie))
    assert signed_in.return_to == asked
    # A path too long to ride in the state is dropped: the console then opens its home page.
    location, cookie = await begin(signin, "/console/" + "x" * 200)
    assert len(state_of(location)) <= 256
    signed_in = await signin.finish(request(at_provider(provider, location), cookie))
    assert signed_in.return_to is None


async def test_the_pending_cookie_is_cleared_where_it_was_set(provider: OpenIdProvider) -> None:
    """After the callback, the cookie that bound the sign-in to the browser is deleted on the
    same path and with the same attributes (a browser ignores a deletion that differs)."""
    signin = console(provider)
    started = (await signin.start(request(), "/console/")).headers["set-cookie"]
    response = Response()
    signin.forget(response)
    cleared = response.headers["set-cookie"]
    assert cleared.startswith(f'{PENDING_COOKIE}=""') and "max-age=0" in cleared.lower()

    def attributes(header: str) -> set[str]:
        kept = {"path", "secure", "httponly", "samesite"}
        parts = [p.strip().lower() for p in header.split(";")[1:]]
        return {p for p in parts if p.split("=")[0] in kept}

    assert attributes(cleared) == attributes(started)
    assert "path=/console/signin/callback" in attributes(cleared)


async def test_an_unknown_state_is_refused(provider: OpenIdProvider) -> None:
    signin = console(provider)
    location, cookie = await begin(signin)
    callback = at_provider(provider, location)
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = "made-up"
    with pytest.raises(SignInFailed, match="unknown or already used sign-in attempt"):
        await signin.finish(request(f"{callback.split('?')[0]}?{urlencode(query)}", cookie))


async def test_a_callback_works_once(provider: OpenIdProvider) -> None:
    signin = console(provider)
    location, cookie = await begin(signin)
    callback = at_provider(provider, location)
    await signin.finish(request(callback, cookie))
    with pytest.raises(SignInFailed, match="already used"):
        await signin.finish(request(callback, cookie))


async def test_a_used_code_is_refused_by_the_provider_in_a_later_attempt(
    provider: OpenIdProvider,
) -> None:
    signin = console(provider)
    location, cookie = await begin(signin)
    first = at_provider(provider, location)
    await signin.finish(request(first, cookie))
    # A fresh attempt of the attacker's own, carrying the code seen in the first callback.
    attacker_location, attacker_cookie = await begin(signin)
    attacker_state = state_of(attacker_location)
    code = parse_qs(urlsplit(first).query)["code"][0]
    replay = f"{first.split('?')[0]}?{urlencode({'code': code, 'state': attacker_state})}"
    with pytest.raises(SignInFailed, match=r"refused the authorization code \(invalid_grant\)"):
        await signin.finish(request(replay, attacker_cookie))


async def test_a_sign_in_cannot_be_finished_in_another_browser(provider: OpenIdProvider) -> None:
    signin = console(provider)
    location, cookie = await begin(signin)
    callback = at_provider(provider, location)
    with pytest.raises(SignInFailed, match="started in another browser"):
        await signin.finish(request(callback, "another-browser's-cookie"))
    with pytest.raises(SignInFailed, match="started in another browser"):
        await signin.finish(request(callback))
    # The browser that started it still finishes it.
    assert (await signin.finish(request(callback, cookie))).username == "erin@hospital.example"


async def test_a_flood_of_started_sign_ins_does_not_push_a_stewards_sign_in_out(
    provider: OpenIdProvider,
) -> None:
    """Anyone on the network can start sign-ins without an account; none of them may cost a
    steward whose browser is at the provider their sign-in."""
    signin = console(provider)
    location, cookie = await begin(signin)
    for _ in range(20_000):
        await signin.start(request(), "/console/")
    callback = at_provider(provider, location)
    assert (await signin.finish(request(callback, cookie))).username == "erin@hospital.example"


async def test_a_state_the_console_did_not_issue_is_refused(provider: OpenIdProvider) -> None:
    """A state is accepted only with the console's own MAC: changing its time (to outlive the
    time limit), its random part or the page it leads to breaks it."""
    signin = console(provider)
    location, cookie = await begin(signin)
    callback = at_provider(provider, location)
    state = state_of(location)
    created, random, target, mac = state.split(".")
    elsewhere = base64.urlsafe_b64encode(b"/console/audit").decode().rstrip("=")
    forged = [
        f"{int(created) + 3600}.{random}.{target}.{mac}",
        f"{created}.{random[:-1]}{'B' if random.endswith('A') else 'A'}.{target}.{mac}",
        f"{created}.{random}.{elsewhere}.{mac}",
        f"{created}.{random}.{target}",
        f"{created}.{random}.{target}.é",
        f"{created}.{random}.{target}.{mac}\x00",
        "",
    ]
    base, query = callback.split("?")
    for wrong in forged:
        changed = {k: v[0] for k, v in parse_qs(query).items()} | {"state": wrong}
        with pytest.raises(SignInFailed, match="unknown or already used"):
            await signin.finish(request(f"{base}?{urlencode(changed)}", cookie))
    assert (await signin.finish(request(callback, cookie))).username == "erin@hospital.example"


async def test_a_sign_in_that_took_too_long_is_refused(provider: OpenIdProvider) -> None:
    now = [time.time()]
    client = provider.client(CONSOLE_CLIENT_ID)
    signin = OidcSignIn(
        issuer=provider.issuer,
        client_id=client.client_id,
        client_secret=client.secret or "",
        redirect_url=client.redirect_uris[0],
        ca_file=provider.ca,
        clock=lambda: now[0],
    )
    location, cookie = await begin(signin)
    callback = at_provider(provider, location)
    now[0] += PENDING_SECONDS + 1
    with pytest.raises(SignInFailed, match="took too long"):
        await signin.finish(request(callback, cookie))


async def test_a_sign_in_the_provider_refused_says_why_without_echoing_input(
    provider: OpenIdProvider,
) -> None:
    signin = console(provider)
    location, cookie = await begin(signin)
    url = "https://station.example/console/signin/callback?" + urlencode(
        {"error": "access_denied", "state": state_of(location)}
    )
    with pytest.raises(SignInFailed, match=r"refused the sign-in \(access_denied\)"):
        await signin.finish(request(url, cookie))
    location, cookie = await begin(signin)
    url = "https://station.example/console/signin/callback?" + urlencode(
        {"error": "<script>alert(1)</script>", "state": state_of(location)}
    )
    with pytest.raises(SignInFailed, match=r"\(unknown_error\)$"):
        await signin.finish(request(url, cookie))


def _expired(claims: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {**claims, "iat": now - 7200, "exp": now - 120}


FORGERIES: dict[str, tuple[Callable[[OpenIdProvider, dict[str, Any]], str], str]] = {
    "nonce of another attempt": (
        lambda p, c: signed_by_provider(p, {**c, "nonce": "someone-else's"}),
        "another sign-in attempt",
    ),
    "no nonce": (
        lambda p, c: signed_by_provider(p, {k: v for k, v in c.items() if k != "nonce"}),
        "another sign-in attempt",
    ),
    "signed by another key": (lambda p, c: signed_by_stranger(p, c), "signature does not verify"),
    "alg none": (lambda p, c: unsigned(c, p.key_id), r"algorithm is not accepted \(none\)"),
    "HS256 with the client secret": (
        lambda p, c: hmac_signed(c, p.client(CONSOLE_CLIENT_ID).secret or "", p.key_id),
        r"algorithm is not accepted \(HS256\)",
    ),
    "another issuer": (
        lambda p, c: signed_by_provider(p, {**c, "iss": "https://idp.elsewhere.example"}),
        "another issuer",
    ),
    "another audience": (
        lambda p, c: signed_by_provider(p, {**c, "aud": "pht-cli"}),
        "another application",
    ),
    "two audiences without azp": (
        lambda p, c: signed_by_provider(p, {**c, "aud": [CONSOLE_CLIENT_ID, "pht-cli"]}),
        "another application",
    ),
    "expired": (lambda p, c: signed_by_provider(p, _expired(c)), "has expired"),
    "no expiry": (
        lambda p, c: signed_by_provider(p, {k: v for k, v in c.items() if k != "exp"}),
        "not valid",
    ),
    "unknown key id": (
        lambda p, c: jwt.encode(c, p.signing_key_pem, algorithm="RS256", headers={"kid": "x"}),
        "key the provider does not publish",
    ),
    "not a token": (lambda p, c: "not-a-jwt", "malformed"),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_a_forged_id_token_is_refused(provider: OpenIdProvider, forgery: str) -> None:
    forge, reason = FORGERIES[forgery]
    signin = console(provider, SwapIdToken(provider.ca, lambda claims: forge(provider, claims)))
    location, cookie = await begin(signin)
    callback = at_provider(provider, location)
    with pytest.raises(SignInFailed, match=reason):
        await signin.finish(request(callback, cookie))


async def test_a_genuine_token_of_another_provider_is_refused(
    provider: OpenIdProvider, other_provider: OpenIdProvider
) -> None:
    """A real ID token from the other provider (its own key, issuer and the same client id)."""
    other = console(other_provider)
    location, cookie = await begin(other)
    theirs = (await other.finish(request(at_provider(other_provider, location), cookie))).token
    signin = console(provider, SwapIdToken(provider.ca, lambda _claims: theirs))
    location, cookie = await begin(signin)
    with pytest.raises(SignInFailed, match=r"key the provider does not publish"):
        await signin.finish(request(at_provider(provider, location), cookie))


async def test_an_unreachable_provider_is_a_reason_not_a_traceback(tmp_path: Path) -> None:
    signin = OidcSignIn(
        issuer="https://127.0.0.1:9",
        client_id="pht-console",
        client_secret="s",
        redirect_url="https://station.example/console/signin/callback",
    )
    with pytest.raises(SignInFailed, match="cannot be reached"):
        await signin.start(request(), "/console/")


def test_the_settings_make_the_sign_in(tmp_path: Path, provider: OpenIdProvider) -> None:
    assert oidc_sign_in(Settings()) is None
    with pytest.raises(
        ValueError, match="PHT_API_CONSOLE_OIDC_CLIENT_ID, PHT_API_CONSOLE_OIDC_CLIENT"
    ):
        oidc_sign_in(Settings(console_oidc_issuer=provider.issuer))
    secret = tmp_path / "secret"
    secret.write_text("\n")
    configured: dict[str, Any] = {
        "console_oidc_issuer": provider.issuer,
        "console_oidc_client_id": CONSOLE_CLIENT_ID,
        "console_oidc_client_secret_file": secret,
        "console_oidc_redirect_url": "https://station.example/console/signin/callback",
        "console_oidc_ca_file": provider.ca,
        "console_oidc_scopes": "email groups",
    }
    with pytest.raises(ValueError, match="is empty"):
        oidc_sign_in(Settings(**configured))
    plain = {**configured, "console_oidc_issuer": "http://127.0.0.1:1"}
    with pytest.raises(ValueError, match="ISSUER must be an https:// URL"):
        oidc_sign_in(Settings(**plain))
    secret.write_text("s3cret\n")
    made = oidc_sign_in(Settings(**configured))
    assert isinstance(made, OidcSignIn)
    assert made.scopes == ("openid", "email", "groups") and made.client_id == CONSOLE_CLIENT_ID
    assert made.label == "Sign in with 127.0.0.1"
