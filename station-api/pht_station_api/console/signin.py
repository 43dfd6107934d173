"""How a steward signs in to the console: one interface, chosen from the settings.

A sign-in either answers ``start`` with a redirect (an OpenID provider) or a form (the local
login of the station in a box), and turns the callback or form post into :class:`SignedIn`:
who the steward is and the bearer token the console then presents for them, to the Kubernetes
API and to the station API's identity checker. The console never decides what a steward may
do from the sign-in: RBAC does, through SubjectAccessReview.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fastapi import Request
from fastapi.responses import Response

from pht_station_api.settings import Settings


@dataclass(frozen=True)
class SignedIn:
    #: As shown on pages.
    username: str
    #: Presented to the Kubernetes API and the station API's identity checker; never shown.
    token: str
    #: The console session ends then (at the latest).
    expires_at: datetime
    #: Who this is for certain, where the shown name may not be unique (an OpenID provider's
    #: issuer and ``sub``); empty: the user name is (the local login).
    subject: str = ""
    #: The console page to go on to, where the sign-in carried it through a provider.
    return_to: str | None = None

    @property
    def account(self) -> str:
        """The key the console counts this person's sessions by."""
        return self.subject or self.username

    def __repr__(self) -> str:
        return f"SignedIn(username={self.username!r}, expires_at={self.expires_at!r})"


class SignInFailed(Exception):
    """Signing in did not work; the message is one line that is safe to show."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        #: The HTTP status of the page that says so (429: too many attempts).
        self.status = status


class SignIn(Protocol):
    #: Shown on the sign-in page.
    label: str

    async def start(self, request: Request, return_to: str) -> Response:
        """A redirect to the identity provider, or the login form."""
        ...

    async def finish(self, request: Request) -> SignedIn:
        """The provider's callback or the form post; :class:`SignInFailed` when refused."""
        ...

    def forget(self, response: Response) -> None:
        """Clear the cookie that bound the finished sign-in to the browser."""
        ...


def sign_in_from_settings(settings: Settings) -> SignIn | None:
    """The sign-in the settings choose, or ``None`` (the console then only says how to enable
    one). The local login refuses to start unless the external listener is on loopback."""
    # OpenID Connect: chosen when an issuer is configured (console/oidc.py).
    if settings.console_oidc_issuer:
        from pht_station_api.console.oidc import oidc_sign_in

        return oidc_sign_in(settings)
    if settings.console_local_login_file is not None:
        from pht_station_api.console.locallogin import LocalSignIn

        return LocalSignIn.from_settings(settings)
    return None
