"""Cross-site request forgery: every console POST must come from a console page.

Two checks, both required: the form carries the session's CSRF token (compared in constant
time), and the browser's ``Origin`` header (or, where a browser sends none, its ``Referer``)
names this console: the station's public base URL, or the host the request was sent to.
``Origin: null`` (a sandboxed frame, a cross-site redirect, a ``data:`` page) is refused.
A refusal names which check failed, never the expected token.
"""

import hmac
from urllib.parse import urlsplit

from fastapi import Request

FORM_FIELD = "csrf_token"


class CsrfRejected(Exception):
    """A forged or stale form post; the message says which check failed (in English), ``key``
    names the same reason in the console's catalogs."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _origin(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def check_origin(request: Request, public_base_url: str) -> None:
    """Refuse a post whose Origin (or Referer) is neither this console nor its public URL."""
    sent = request.headers.get("origin")
    if sent is not None and sent.strip().lower() == "null":
        raise CsrfRejected("csrf.other_site", "the form was posted from another site")
    if sent is None:
        referer = request.headers.get("referer")
        if not referer:
            raise CsrfRejected(
                "csrf.no_origin", "the request names no origin (Origin or Referer header)"
            )
        sent = referer
    origin = _origin(sent)
    if origin is None:
        raise CsrfRejected("csrf.bad_origin", "the request's origin is not a URL")
    host = request.headers.get("host", "").lower()
    public = _origin(public_base_url)
    # The host the browser sent the form to (behind a TLS-terminating proxy the scheme differs).
    if origin[1] == host or origin == public:
        return
    raise CsrfRejected("csrf.other_site", "the form was posted from another site")


def check_token(expected: str, submitted: str | None) -> None:
    """Refuse a post whose CSRF token is missing or not this session's."""
    if not submitted:
        raise CsrfRejected("csrf.no_token", "the form carries no CSRF token")
    if not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise CsrfRejected("csrf.wrong_token", "the form's CSRF token is not this session's")
