"""How the console signs a steward in: the interface a sign-in method implements."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class SignedIn:
    username: str
    token: str
    expires_at: datetime


class SignInFailed(Exception):
    """The sign-in did not succeed; the message is one line, safe to show."""


class SignIn(Protocol):
    label: str

    async def start(self, request: Request, return_to: str) -> Response: ...

    async def finish(self, request: Request) -> SignedIn: ...
