"""``pht login`` and ``pht credentials oidc``: one identity from the hospital's OpenID provider
for kubectl and ``pht``.

``pht login`` signs in with the authorization code flow for native applications (RFC 8252): it
listens on a loopback address of this machine, sends the browser to the provider with a fresh
state, nonce and PKCE challenge (S256), takes the code on ``http://127.0.0.1:PORT/callback``,
exchanges it, checks the ID token (signature against the provider's published keys, issuer,
audience, expiry, nonce) and keeps the tokens in the user's cache folder, readable by the user
only. ``pht credentials oidc`` is a client-go exec credential plugin: a kubeconfig user whose
``exec`` runs it gives kubectl and ``pht`` that ID token, refreshed with the refresh token when it
is about to expire.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import hmac
import http.server
import json
import os
import secrets
import ssl
import stat
import sys
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx2
import jwt

from pht_cli.errors import CliError, one_line
from pht_contract.idtokens import (
    IdTokenRefused,
    pkce_challenge,
    signing_key_id,
    verified_claims,
)

DEFAULT_SCOPES: Final = "openid email groups"
CALLBACK_PATH: Final = "/callback"
#: A cached ID token is used while it has at least this many seconds left.
MIN_REMAINING_SECONDS: Final = 60
EXEC_API_VERSION: Final = "client.authentication.k8s.io/v1beta1"


@dataclass(frozen=True)
class Provider:
    """The provider and the client this machine signs in as."""

    issuer: str
    client_id: str
    ca_file: Path | None

    def http(self) -> httpx2.Client:
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as error:
                raise CliError(
                    f"cannot use the CA file {self.ca_file}: {one_line(error)}"
                ) from error
        return httpx2.Client(verify=verify, timeout=15.0)

    def get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with self.http() as http:
                answer = http.get(url)
        except httpx2.HTTPError as error:
            raise CliError(
                f"cannot reach the identity provider ({what}): {one_line(error)}"
            ) from error
        body = _json_object(answer)
        if answer.status_code != 200 or body is None:
            raise CliError(f"the identity provider answered {answer.status_code} ({what})")
        return body

    def discovery(self) -> dict[str, Any]:
        meta = self.get_json(f"{self.issuer}/.well-known/openid-configuration", "discovery")
        if meta.get("issuer") != self.issuer:
            raise CliError(f"the provider at {self.issuer} names another issuer in its discovery")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(field), str):
                raise CliError(f"the provider's discovery lacks {field}")
        return meta

    def token_request(self, meta: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        try:
            with self.http() as http:
                answer = http.post(
                    str(meta["token_endpoint"]),
                    data={**form, "client_id": self.client_id},
                    headers={"Accept": "application/json"},
                )
        except httpx2.HTTPError as error:
            raise CliError(
                f"cannot reach the identity provider (token): {one_line(error)}"
            ) from error
        body = _json_object(answer)
        if answer.status_code != 200 or body is None:
            reason = body.get("error") if body else None
            shown = one_line(reason)[:64] if isinstance(reason, str) else answer.status_code
            raise CliError(f"the identity provider refused the request ({shown})")
        return body

    def verify(self, meta: dict[str, Any], id_token: str, nonce: str | None) -> dict[str, Any]:
        """The ID token's claims once signature, issuer, audience, expiry (and nonce) hold."""
        try:
            _, wanted = signing_key_id(id_token)
            keys = self.get_json(str(meta["jwks_uri"]), "keys").get("keys", [])
            matching = [k for k in keys if isinstance(k, dict) and k.get("kid") == wanted]
            if len(matching) != 1:
                raise CliError("the ID token is signed by a key the provider does not publish")
            return verified_claims(
                id_token,
                jwt.PyJWK(matching[0]),
                issuer=self.issuer,
                client_id=self.client_id,
                nonce=nonce,
            )
        except (IdTokenRefused, jwt.PyJWTError) as refused:
            raise CliError(f"the provider's ID token is refused: {one_line(refused)}") from refused


def _json_object(answer: httpx2.Response) -> dict[str, Any] | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# --- the token cache ---------------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pht" / "oidc"


def cache_file(provider: Provider) -> Path:
    key = hashlib.sha256(f"{provider.issuer}\n{provider.client_id}".encode()).hexdigest()[:24]
    return cache_dir() / f"{key}.json"


def _refuse_shared(path: Path) -> None:
    """A cache folder or file must be this user's own, no link, and closed to everyone else:
    a token cache others can write would let them sign this user in as someone else."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise CliError(
            f"the token cache {path} is not private to this user (it must be theirs, not a "
            "link, and closed to group and others): remove it and run 'pht login' again"
        )


def _private_cache_dir(provider: Provider) -> Path:
    folder = cache_file(provider).parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.lstat()
    if not stat.S_ISLNK(info.st_mode) and info.st_uid == os.getuid():
        folder.chmod(0o700)
    _refuse_shared(folder)
    return folder


def save_tokens(provider: Provider, tokens: dict[str, Any]) -> Path:
    """Keep the tokens where only this user can read them (folder 0700, file 0600)."""
    _private_cache_dir(provider)
    path = cache_file(provider)
    record = {"issuer": provider.issuer, "client_id": provider.client_id, **tokens}
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    descriptor = os.open(partial, flags, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(record, out)
    os.replace(partial, path)
    return path


def load_tokens(provider: Provider) -> dict[str, Any] | None:
    path = cache_file(provider)
    _refuse_shared(path.parent)
    _refuse_shared(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("issuer") != provider.issuer:
        return None
    return record


# --- pht login ---------------------------------------------------------------------------------


@dataclass
class _Callback:
    query: dict[str, str] | None = None


def _callback_server(port: int, expected_state: str) -> tuple[http.server.HTTPServer, _Callback]:
    received = _Callback()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            if parts.path != CALLBACK_PATH or received.query is not None:
                self._answer(404, "Nothing here.")
                return
            # Bytes: a state with non-ASCII characters is just another wrong state.
            sent_state = query.get("state", "").encode()
            if not hmac.compare_digest(sent_state, expected_state.encode()):
                self._answer(400, "This answer belongs to another sign-in; it was ignored.")
                return
            received.query = query
            self._answer(200, "Signed in. You may close this tab and return to the terminal.")

        def _answer(self, status: int, text: str) -> None:
            body = f"<!doctype html><title>pht login</title><p>{text}</p>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the query holds the code: nothing is logged

    try:
        server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    except OSError as error:
        raise CliError(f"cannot listen on 127.0.0.1:{port}: {one_line(error)}") from error
    return server, received


def sign_in(
    provider: Provider, scopes: str, port: int, open_browser: bool, timeout: float
) -> dict[str, Any]:
    """The browser sign-in; returns the verified tokens as they are cached."""
    meta = provider.discovery()
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    server, received = _callback_server(port, state)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    url = f"{meta['authorization_endpoint']}?{query}"
    print(f"Sign in at this address (waiting {timeout:.0f} s):\n{url}", file=sys.stderr, flush=True)
    if open_browser:
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
    deadline = time.monotonic() + timeout
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        while received.query is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    answer = received.query
    if answer is None:
        raise CliError(f"no sign-in within {timeout:.0f} s")
    if "error" in answer:
        raise CliError(
            f"the identity provider refused the sign-in ({one_line(answer['error'])[:64]})"
        )
    if not answer.get("code"):
        raise CliError("the identity provider's answer has no authorization code")
    tokens = provider.token_request(
        meta,
        {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    return _checked(provider, meta, tokens, nonce)


def _checked(
    provider: Provider, meta: dict[str, Any], tokens: dict[str, Any], nonce: str | None
) -> dict[str, Any]:
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise CliError("the identity provider returned no ID token")
    claims = provider.verify(meta, id_token, nonce)
    refresh = tokens.get("refresh_token")
    return {
        "id_token": id_token,
        "refresh_token": refresh if isinstance(refresh, str) else None,
        "expires_at": int(claims["exp"]),
        "subject": str(claims.get("email") or claims["sub"]),
    }


def _provider(args: argparse.Namespace) -> Provider:
    issuer = str(args.issuer).rstrip("/")
    if urllib.parse.urlsplit(issuer).scheme != "https":
        raise CliError(f"the issuer must be an https:// URL, not {issuer!r}")
    return Provider(issuer, args.client_id, args.ca_file)


def _login(args: argparse.Namespace) -> int:
    provider = _provider(args)
    tokens = sign_in(provider, args.scopes, args.port, not args.no_browser, args.timeout)
    path = save_tokens(provider, tokens)
    until = datetime.fromtimestamp(tokens["expires_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"Signed in as {tokens['subject']} (ID token until {until}; tokens in {path})")
    return 0


# --- pht credentials oidc ----------------------------------------------------------------------


@contextlib.contextmanager
def _refreshing_alone(provider: Provider) -> Iterator[None]:
    """One refresh at a time per provider and client: kubectl may run the plugin several times
    at once, and a provider that rotates refresh tokens accepts each one only once."""
    lock = _private_cache_dir(provider) / cache_file(provider).with_suffix(".lock").name
    descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def current_id_token(provider: Provider, now: float | None = None) -> tuple[str, int]:
    """A valid ID token and its expiry: the cached one, else one from the refresh token."""
    if load_tokens(provider) is None:
        raise CliError(_sign_in_hint(provider, "not signed in to"))
    with _refreshing_alone(provider):
        return _current_id_token(provider, time.time() if now is None else now)


def _current_id_token(provider: Provider, moment: float) -> tuple[str, int]:
    cached = load_tokens(provider)
    if cached is None:
        raise CliError(_sign_in_hint(provider, "not signed in to"))
    if int(cached.get("expires_at", 0)) - moment >= MIN_REMAINING_SECONDS:
        return str(cached["id_token"]), int(cached["expires_at"])
    refresh = cached.get("refresh_token")
    if not isinstance(refresh, str):
        raise CliError(_sign_in_hint(provider, "the sign-in has expired at"))
    meta = provider.discovery()
    try:
        answer = provider.token_request(
            meta, {"grant_type": "refresh_token", "refresh_token": refresh}
        )
    except CliError as error:
        raise CliError(_sign_in_hint(provider, "the sign-in has expired at")) from error
    tokens = _checked(provider, meta, answer, None)
    if tokens["refresh_token"] is None:
        tokens["refresh_token"] = refresh
    save_tokens(provider, tokens)
    return str(tokens["id_token"]), int(tokens["expires_at"])


def _sign_in_hint(provider: Provider, what: str) -> str:
    ca = f" --ca-file {provider.ca_file}" if provider.ca_file else ""
    return (
        f"{what} {provider.issuer}: run 'pht login --issuer {provider.issuer} "
        f"--client-id {provider.client_id}{ca}'"
    )


def exec_credential(token: str, expires_at: int, api_version: str) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": stamp},
    }


def _requested_api_version() -> str:
    """The version kubectl asks for in KUBERNETES_EXEC_INFO, else v1beta1 (which lightkube and
    so ``pht`` understand too)."""
    try:
        info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO", "") or "{}")
    except ValueError:
        return EXEC_API_VERSION
    version = info.get("apiVersion") if isinstance(info, dict) else None
    return (
        version
        if isinstance(version, str) and version.startswith("client.authentication.k8s.io/")
        else EXEC_API_VERSION
    )


def _credentials(args: argparse.Namespace) -> int:
    token, expires_at = current_id_token(_provider(args))
    print(json.dumps(exec_credential(token, expires_at, _requested_api_version())))
    return 0


def _add_provider_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--issuer", required=True, help="the OpenID provider's issuer URL")
    parser.add_argument("--client-id", required=True, help="this tool's client ID at the provider")
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="CA bundle that verifies the provider (default: the system's)",
    )


def register(subparsers: Any) -> None:
    login = subparsers.add_parser(
        "login",
        help="sign in to the hospital's OpenID provider (for kubectl and pht)",
        description="Sign in in the browser to the hospital's OpenID provider and keep the "
        "tokens for 'pht credentials oidc', the kubeconfig's exec credential plugin.",
    )
    _add_provider_options(login)
    login.add_argument(
        "--scopes", default=DEFAULT_SCOPES, help=f"scopes (default: {DEFAULT_SCOPES!r})"
    )
    login.add_argument(
        "--port", type=int, default=0, help="loopback port for the callback (default: any free one)"
    )
    login.add_argument(
        "--no-browser", action="store_true", help="only print the address to open, start no browser"
    )
    login.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (default 300)"
    )
    login.set_defaults(handler=_login)

    credentials = subparsers.add_parser(
        "credentials",
        help="print a kubeconfig exec credential (OpenID Connect)",
        description="Credential plugins for a kubeconfig's users[].user.exec.",
    )
    kinds = credentials.add_subparsers(dest="kind", metavar="KIND", required=True)
    oidc = kinds.add_parser(
        "oidc",
        help="the ID token from 'pht login', refreshed when due, as an ExecCredential",
        description="Print an ExecCredential holding the ID token 'pht login' keeps, refreshed "
        "with its refresh token when it has less than a minute left.",
    )
    _add_provider_options(oidc)
    oidc.set_defaults(handler=_credentials)
