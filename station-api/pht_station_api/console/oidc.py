"""Signing stewards in with the hospital's OpenID provider (authorization code flow with PKCE).

`start` sends the browser to the provider with a fresh state, nonce and PKCE challenge (S256).
Nothing is stored per started sign-in, so anyone can start as many as they like without
pushing a steward's sign-in out: the state carries its time and a MAC under a key of this
process, and the nonce, the PKCE verifier and the value of the short-lived cookie that binds
the sign-in to the browser are derived from the state with that key. `finish` takes the
provider's answer on the callback: the state must be one this console issued, not used before
and not older than a few minutes, the cookie must be the one that started it, the code is
exchanged with the client secret and the verifier, and the ID token is verified against the
provider's published keys (signature, issuer, audience, expiry, nonce). The console then acts
with that ID token, the credential the cluster's API server accepts from this issuer, so what a
steward may do is decided there by RBAC.
"""

import asyncio
import base64
import collections
import hashlib
import hmac
import re
import secrets
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pht_contract.idtokens import (
    IdTokenRefused,
    b64url,
    pkce_challenge,
    signing_key_id,
    verified_claims,
)
from pht_station_api.console.signin import SignedIn, SignIn, SignInFailed
from pht_station_api.settings import Settings

#: The cookie that binds a pending sign-in to the browser that started it.
PENDING_COOKIE = "pht_console_signin"
#: How long a browser may take at the provider before its sign-in attempt is forgotten.
PENDING_SECONDS = 600
#: Used states remembered (to refuse a second use) at most; the oldest are forgotten first.
#: A forgotten one is still refused by the provider (a code is used once) and needs the cookie.
MAX_USED = 10_000
#: The longest console path a sign-in carries back (the state stays within 256 characters).
MAX_RETURN_TO = 120
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


class OidcSignIn:
    """A `SignIn` against one OpenID provider, as one confidential client."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_url: str,
        scopes: tuple[str, ...] = ("openid", "email", "groups"),
        ca_file: Path | None = None,
        username_claim: str = "email",
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_url = redirect_url
        self.scopes = scopes if "openid" in scopes else ("openid", *scopes)
        self.username_claim = username_claim
        self.label = f"Sign in with {urlsplit(self.issuer).hostname or self.issuer}"
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._verify = verify
        self._transport = transport
        self._clock = clock
        #: Signs the states this console issues and derives their secrets; never leaves.
        self._state_key = secrets.token_bytes(32)
        self._used: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._discovery: dict[str, Any] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self._verify, transport=self._transport, timeout=10.0)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                answer = await http.get(url)
        except httpx.HTTPError as error:
            raise SignInFailed(f"the identity provider cannot be reached ({what})") from error
        if answer.status_code != 200:
            raise SignInFailed(f"the identity provider answered {answer.status_code} ({what})")
        try:
            body = answer.json()
        except ValueError as error:
            raise SignInFailed(f"the identity provider sent no JSON ({what})") from error
        if not isinstance(body, dict):
            raise SignInFailed(f"the identity provider sent no JSON object ({what})")
        return body

    async def discovery(self) -> dict[str, Any]:
        """The provider's metadata (OpenID Connect Discovery), fetched once."""
        if self._discovery is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            found = await self._get_json(url, "discovery")
            if found.get("issuer") != self.issuer:
                raise SignInFailed("the identity provider's discovery names another issuer")
            for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(field), str):
                    raise SignInFailed(f"the identity provider's discovery lacks {field}")
            self._discovery = found
        return self._discovery

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        """The provider's public key with this key id; the key set is fetched again once when
        the id is unknown (the provider rotated its keys)."""
        async with self._lock:
            if kid is None or kid not in self._keys:
                meta = await self.discovery()
                keys = await self._get_json(str(meta["jwks_uri"]), "keys")
                fresh: dict[str, jwt.PyJWK] = {}
                for entry in keys.get("keys", []):
                    if isinstance(entry, dict) and entry.get("use", "sig") == "sig":
                        try:
                            key = jwt.PyJWK(entry)
                        except jwt.PyJWTError:
                            continue
                        fresh[str(entry.get("kid", ""))] = key
                self._keys = fresh
            if kid is None:
                if len(self._keys) != 1:
                    raise SignInFailed("the ID token names no key")
                return next(iter(self._keys.values()))
            if kid not in self._keys:
                raise SignInFailed("the ID token is signed by a key the provider does not publish")
            return self._keys[kid]

    def _derived(self, purpose: str, state: str) -> str:
        """A secret of one sign-in attempt (``browser``, ``nonce``, ``verifier``, or the MAC of
        the state itself): 43 URL-safe characters only this process can compute."""
        mac = hmac.new(self._state_key, f"{purpose}\n{state}".encode(), hashlib.sha256)
        return b64url(mac.digest())

    def _new_state(self, return_to: str) -> str:
        # The page to go on to rides in the state, under its MAC (if it is short enough).
        target = b64url(return_to.encode()) if len(return_to) <= MAX_RETURN_TO else ""
        body = f"{int(self._clock())}.{secrets.token_urlsafe(24)}.{target}"
        return f"{body}.{self._derived('state', body)}"

    @staticmethod
    def _return_to(state: str) -> str | None:
        """The console page an issued ``state`` carries, if any."""
        target = state.rpartition(".")[0].split(".")[-1]
        try:
            return base64.urlsafe_b64decode(target + "=" * (-len(target) % 4)).decode() or None
        except (ValueError, UnicodeDecodeError):
            return None

    def _issued_at(self, state: str) -> float | None:
        """When this console issued ``state``; ``None`` for a state it did not issue."""
        body, _, mac = state.rpartition(".")
        created, _, _ = body.partition(".")
        expected = self._derived("state", body).encode()
        if not mac or not hmac.compare_digest(mac.encode(), expected):
            return None
        return float(created) if created.isdigit() else None

    def _use(self, state: str) -> None:
        now = self._clock()
        while self._used and now - next(iter(self._used.values())) > PENDING_SECONDS:
            self._used.popitem(last=False)
        while len(self._used) >= MAX_USED:
            self._used.popitem(last=False)
        self._used[state] = now

    async def start(self, request: Request, return_to: str) -> Response:
        """The redirect to the provider's sign-in; `return_to` rides in the signed state."""
        meta = await self.discovery()
        state = self._new_state(return_to)
        nonce, browser = self._derived("nonce", state), self._derived("browser", state)
        verifier = self._derived("verifier", state)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_url,
                "scope": " ".join(self.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        response = RedirectResponse(f"{meta['authorization_endpoint']}?{query}", status_code=303)
        response.set_cookie(
            PENDING_COOKIE, browser, max_age=PENDING_SECONDS, **self._pending_cookie()
        )
        return response

    def _pending_cookie(self) -> dict[str, Any]:
        """Where the pending sign-in's cookie lives: the callback's path, on its scheme."""
        callback = urlsplit(self.redirect_url)
        return {
            "path": callback.path or "/",
            "secure": callback.scheme == "https",
            "httponly": True,
            "samesite": "lax",
        }

    def forget(self, response: Response) -> None:
        response.delete_cookie(PENDING_COOKIE, **self._pending_cookie())

    async def finish(self, request: Request) -> SignedIn:
        params = request.query_params
        state = params.get("state", "")[:256]
        created = self._issued_at(state)
        if created is None or state in self._used:
            raise SignInFailed("unknown or already used sign-in attempt; please sign in again")
        browser = request.cookies.get(PENDING_COOKIE, "")
        if not hmac.compare_digest(browser.encode(), self._derived("browser", state).encode()):
            # Not used up: someone else's request must not cancel this browser's sign-in.
            raise SignInFailed("this sign-in was started in another browser")
        self._use(state)
        if self._clock() - created > PENDING_SECONDS:
            raise SignInFailed("the sign-in took too long; please sign in again")
        error = params.get("error")
        if error is not None:
            shown = error if _ERROR_CODE.match(error) else "unknown_error"
            raise SignInFailed(f"the identity provider refused the sign-in ({shown})")
        authorization_code = params.get("code")
        if not authorization_code:
            raise SignInFailed("the identity provider's answer has no authorization code")
        id_token = await self._exchange(authorization_code, self._derived("verifier", state))
        claims = await self.verify_id_token(id_token, self._derived("nonce", state))
        username = claims.get(self.username_claim)
        if not isinstance(username, str) or not username:
            raise SignInFailed(f"the ID token has no {self.username_claim}")
        expires = datetime.fromtimestamp(claims["exp"], UTC)
        # The shown claim (an e-mail address) need not be unique; issuer and sub are.
        return SignedIn(
            username,
            id_token,
            expires,
            subject=f"{self.issuer} {claims['sub']}",
            return_to=self._return_to(state),
        )

    async def _exchange(self, code: str, verifier: str) -> str:
        meta = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_url,
            "code_verifier": verifier,
        }
        try:
            async with self._http() as http:
                answer = await http.post(
                    str(meta["token_endpoint"]),
                    data=form,
                    auth=(self.client_id, self._client_secret),
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError as error:
            raise SignInFailed("the identity provider cannot be reached (token)") from error
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not isinstance(body, dict):
            reason = body.get("error") if isinstance(body, dict) else None
            shown = reason if isinstance(reason, str) and _ERROR_CODE.match(reason) else "error"
            raise SignInFailed(f"the identity provider refused the authorization code ({shown})")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the identity provider returned no ID token")
        return id_token

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once signature, issuer, audience, expiry and nonce hold."""
        try:
            _, kid = signing_key_id(id_token)
            key = await self._key(kid)
            return verified_claims(
                id_token, key, issuer=self.issuer, client_id=self.client_id, nonce=nonce
            )
        except IdTokenRefused as refused:
            raise SignInFailed(str(refused)) from refused


def _read_secret(path: Path) -> str:
    try:
        secret = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read the console's client secret file {path}") from error
    if not secret:
        raise ValueError(f"the console's client secret file {path} is empty")
    return secret


def oidc_sign_in(settings: Settings) -> SignIn | None:
    """The console's OpenID Connect sign-in as the settings describe it; None without an issuer.

    Raises ValueError naming the missing setting when an issuer is set without the rest.
    """
    if not settings.console_oidc_issuer:
        return None
    missing = [
        name
        for name in ("client_id", "client_secret_file", "redirect_url")
        if not getattr(settings, f"console_oidc_{name}")
    ]
    if missing:
        names = ", ".join(f"PHT_API_CONSOLE_OIDC_{m.upper()}" for m in missing)
        raise ValueError(f"console sign-in with OpenID Connect needs {names}")
    if urlsplit(settings.console_oidc_issuer).scheme != "https":
        raise ValueError("PHT_API_CONSOLE_OIDC_ISSUER must be an https:// URL")
    assert settings.console_oidc_client_id and settings.console_oidc_client_secret_file
    assert settings.console_oidc_redirect_url
    return OidcSignIn(
        issuer=settings.console_oidc_issuer,
        client_id=settings.console_oidc_client_id,
        client_secret=_read_secret(settings.console_oidc_client_secret_file),
        redirect_url=settings.console_oidc_redirect_url,
        scopes=tuple(settings.console_oidc_scopes.split()),
        ca_file=settings.console_oidc_ca_file,
        username_claim=settings.console_oidc_username_claim,
    )
