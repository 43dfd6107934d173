"""The steward console: server-rendered pages on the external listener, under ``/console/``.

Stewards review pending approvals, check held results and read a Train's provenance, in
English or Dutch, acting with their own token: Kubernetes RBAC (SubjectAccessReview) decides
what each of them may do, as everywhere else in the station. :func:`mount_console` adds it to
an app; modules: :mod:`.pages` (routes), :mod:`.sessions`, :mod:`.csrf`, :mod:`.i18n`,
:mod:`.kubeaccess`, :mod:`.views`, :mod:`.rendering`, :mod:`.signin` and :mod:`.locallogin`.
"""

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pht_station_api.console.csrf import CsrfRejected
from pht_station_api.console.i18n import Translator, choose_language
from pht_station_api.console.kubeaccess import KubeRefused
from pht_station_api.console.pages import PREFIX, Console, ConsoleRefused, NotSignedIn, router
from pht_station_api.console.rendering import ConsoleHeaders, render, secure
from pht_station_api.console.sessions import SessionStore
from pht_station_api.console.signin import sign_in_from_settings
from pht_station_api.settings import Settings


def console_for(settings: Settings) -> Console:
    """The console's sessions and sign-in; raises ``ValueError`` for a sign-in that must not
    start here (the local login on a non-loopback listener)."""
    namespaces = tuple(n.strip() for n in settings.console_namespaces.split(",") if n.strip())
    return Console(
        sessions=SessionStore(settings.console_max_sessions, settings.console_session_seconds),
        sign_in=sign_in_from_settings(settings),
        namespaces=namespaces,
    )


async def _not_signed_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, NotSignedIn)
    target = f"{PREFIX}/signin?return_to={quote(error.return_to, safe='/')}"
    return secure(RedirectResponse(target, status_code=303))


async def _refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, ConsoleRefused)
    failure = Translator(choose_language(request))(error.key, **error.values)
    return render(request, "error.html", {"failure": failure}, status_code=error.status)


async def _forged(request: Request, error: Exception) -> Response:
    assert isinstance(error, CsrfRejected)
    failure = Translator(choose_language(request))(error.key)
    return render(request, "error.html", {"failure": failure}, status_code=403)


async def _unreachable(request: Request, error: Exception) -> Response:
    failure = Translator(choose_language(request))("refused.detail", detail=str(error))
    return render(request, "error.html", {"failure": failure}, status_code=502)


def mount_console(app: FastAPI, settings: Settings) -> None:
    app.state.console = console_for(settings)
    app.include_router(router)
    static = StaticFiles(packages=[("pht_station_api.console", "static")])
    app.mount(f"{PREFIX}/static", static, name="console-static")
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(ConsoleRefused, _refused)
    app.add_exception_handler(CsrfRejected, _forged)
    app.add_exception_handler(KubeRefused, _unreachable)
    app.add_middleware(ConsoleHeaders, prefix=PREFIX)
