"""Pages from the Jinja2 templates next to this module, escaped and with strict headers.

Autoescaping is on for every template, so whatever a Train or a result carries (a requester's
name, a purpose, a query, a message) is shown as text, never run. Every console response gets
a Content-Security-Policy without inline script, ``frame-ancestors 'none'`` and ``no-store``.
"""

from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from pht_station_api.console.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    Translator,
    choose_language,
)

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

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
