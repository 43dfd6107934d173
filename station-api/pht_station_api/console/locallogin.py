"""The local login of the station in a box: a user name and password, on 127.0.0.1 only.

Where no OpenID provider is installed (the station in a box), ``pht demo`` writes a file of
scrypt password hashes (``PHT_API_CONSOLE_LOCAL_LOGIN_FILE``) and lets the console sign a
steward in with it. A correct password gives the session the user's token from the local
identities file, which the station API's identity checker then authenticates as for any other
caller. It refuses to start unless the external listener is bound to a loopback address, and
the Helm chart has no value that sets it.

Failed passwords are limited (:class:`FailedSignIns`): a user name that failed
:data:`MAX_FAILURES_PER_NAME` times, or the login as a whole after :data:`MAX_FAILURES` failures,
is refused for the rest of :data:`FAILURE_WINDOW_SECONDS` without a password being tried. Names
that exist and names that do not are counted alike, so the refusal tells nobody which exist.

Login file shape (YAML)::

    users:
      - {username: steward@station.local, scrypt: "16384$8$1$<salt b64>$<hash b64>"}
"""

import base64
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import yaml
from fastapi import Request
from fastapi.responses import Response

from pht_station_api.console.csrf import CsrfRejected, check_origin, check_token
from pht_station_api.console.rendering import render
from pht_station_api.console.signin import SignedIn, SignInFailed
from pht_station_api.settings import Settings

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
LOGIN_COOKIE: Final = "__Host-pht-console-login"
MAX_FIELD: Final = 256
#: Failed passwords remembered for this long.
FAILURE_WINDOW_SECONDS: Final = 15 * 60
#: Failures of one user name within the window after which that name is refused.
MAX_FAILURES_PER_NAME: Final = 5
#: Failures of all names within the window after which every name is refused.
MAX_FAILURES: Final = 30


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The login file's form of a password: ``n$r$p$salt$hash`` (scrypt, base64 parts)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"{SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded[0]}${encoded[1]}"


def _matches(password: str, stored: str) -> bool:
    try:
        n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        computed = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, expected)


#: Compared against when the user name is unknown, so that takes as long as a wrong password.
_UNKNOWN_USER: Final = hash_password(secrets.token_urlsafe(16))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _tokens_by_user(identities_file: Path) -> dict[str, str]:
    """User name → plain token, for the users of the local identities file that have one."""
    document = yaml.safe_load(identities_file.read_text(encoding="utf-8")) or {}
    return {
        str(entry["username"]): str(entry["token"])
        for entry in document.get("users", [])
        if entry.get("token")
    }


class FailedSignIns:
    """The failed passwords of the last :data:`FAILURE_WINDOW_SECONDS`, at most
    :data:`MAX_FAILURES` of them (so the memory it takes is bounded whatever is tried)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: deque[tuple[float, str]] = deque(maxlen=MAX_FAILURES)

    def _forget_old(self) -> float:
        now = self._clock()
        while self._failures and now - self._failures[0][0] >= FAILURE_WINDOW_SECONDS:
            self._failures.popleft()
        return now

    def refusal(self, username: str) -> SignInFailed | None:
        """Why ``username`` may not try a password now, or ``None`` when it may."""
        now = self._forget_old()
        mine = [moment for moment, name in self._failures if name == username]
        if len(mine) >= MAX_FAILURES_PER_NAME:
            blocking, whose = mine[-MAX_FAILURES_PER_NAME], "this user name"
        elif len(self._failures) >= MAX_FAILURES:
            blocking, whose = self._failures[0][0], "the local login of this station"
        else:
            return None
        minutes = max(1, math.ceil((blocking + FAILURE_WINDOW_SECONDS - now) / 60))
        return SignInFailed(
            f"too many failed sign-ins for {whose}; try again in {minutes} minute(s)", status=429
        )

    def failed(self, username: str) -> None:
        self._forget_old()
        self._failures.append((self._clock(), username))

    def succeeded(self, username: str) -> None:
        """A correct password clears that name's failures."""
        kept = [(moment, name) for moment, name in self._failures if name != username]
        self._failures = deque(kept, maxlen=MAX_FAILURES)


@dataclass
class LocalSignIn:
    passwords: dict[str, str]
    identities_file: Path
    public_base_url: str
    session_seconds: float
    label: str = "local"
    failures: FailedSignIns = field(default_factory=FailedSignIns)

    @classmethod
    def from_settings(cls, settings: Settings) -> "LocalSignIn":
        if not is_loopback(settings.external_host):
            raise ValueError(
                "the console's local login serves 127.0.0.1 only: bind "
                "PHT_API_EXTERNAL_HOST to a loopback address or unset "
                "PHT_API_CONSOLE_LOCAL_LOGIN_FILE"
            )
        if settings.identity_mode != "local" or settings.local_identities_file is None:
            raise ValueError(
                "the console's local login needs PHT_API_IDENTITY_MODE=local and "
                "PHT_API_LOCAL_IDENTITIES_FILE"
            )
        assert settings.console_local_login_file is not None
        document = yaml.safe_load(settings.console_local_login_file.read_text("utf-8")) or {}
        passwords = {str(u["username"]): str(u["scrypt"]) for u in document.get("users", [])}
        return cls(
            passwords,
            settings.local_identities_file,
            settings.public_base_url,
            float(settings.console_session_seconds),
        )

    async def start(self, request: Request, return_to: str) -> Response:
        nonce = secrets.token_urlsafe(32)
        response = render(
            request,
            "signin_local.html",
            {"form_token": nonce, "return_to": return_to, "failure": None},
        )
        response.set_cookie(
            LOGIN_COOKIE, nonce, secure=True, httponly=True, samesite="strict", path="/"
        )
        return response

    async def finish(self, request: Request) -> SignedIn:
        form = await request.form()
        try:
            check_origin(request, self.public_base_url)
            submitted = form.get("form_token")
            check_token(request.cookies.get(LOGIN_COOKIE, ""), str(submitted or "") or None)
        except CsrfRejected as rejected:
            raise SignInFailed(str(rejected)) from None
        username = str(form.get("username") or "")[:MAX_FIELD]
        password = str(form.get("password") or "")[:MAX_FIELD]
        refused = self.failures.refusal(username)
        if refused is not None:
            raise refused
        stored = self.passwords.get(username)
        matched = _matches(password, stored or _UNKNOWN_USER)
        if stored is None or not matched:
            self.failures.failed(username)
            raise SignInFailed("unknown user name or wrong password")
        self.failures.succeeded(username)
        token = _tokens_by_user(self.identities_file).get(username)
        if token is None:
            raise SignInFailed("this user has no token in the local identities file")
        expires = datetime.now(UTC) + timedelta(seconds=self.session_seconds)
        return SignedIn(username, token, expires)

    def forget(self, response: Response) -> None:
        response.delete_cookie(
            LOGIN_COOKIE, secure=True, httponly=True, samesite="strict", path="/"
        )
