"""Pages from the Jinja2 templates next to this module, escaped and with strict headers.

Autoescaping is on for every template, so whatever a Train or a result carries (a requester's
name, a purpose, a query, a message) is shown as text, never run. Every console response gets
a Content-Security-Policy without inline script, ``frame-ancestors 'none'`` and ``no-store``;
:class:`ConsoleHeaders` adds the same headers to every other response under ``/console/`` too
(the station API's JSON errors for a malformed request or an unknown page, the static files).
"""

from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pht_station_api.console.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    Translator,
    choose_language,
)

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

#: A picture is served as an image and nothing else: no document a browser could render or run.
PICTURE_POLICY: Final = "default-src 'none'; sandbox; frame-ancestors 'none'"

ENVIRONMENT: Final = Environment(
    loader=PackageLoader("pht_station_api.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


class ConsoleHeaders:
    """ASGI middleware: every response to a path under ``prefix`` gets :data:`SECURITY_HEADERS`,
    whichever part of the app answered; a PNG gets the stricter :data:`PICTURE_POLICY`."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if headers.get("content-type") == "image/png":
                    headers["Content-Security-Policy"] = PICTURE_POLICY
            await send(message)

        await self.app(scope, receive, send_secured)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    language = choose_language(request)
    values = {
        "t": Translator(language),
        "lang": language,
        "languages": LANGUAGES,
        "path": request.url.path,
        "user": None,
        "csrf_token": "",
        "notice": None,
        "failure": None,
        **(context or {}),
    }
    html = ENVIRONMENT.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code)
    secure(response)
    if request.query_params.get("lang") == language:
        # A language chosen by a link stays chosen.
        response.set_cookie(
            LANGUAGE_COOKIE, language, secure=True, httponly=True, samesite="strict", path="/"
        )
    return response
