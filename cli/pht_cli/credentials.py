"""The bearer token the CLI presents to the station API.

In order: ``--token-file``, ``--token``, ``$PHT_TOKEN``, and else the credential of the
kubeconfig's user (``--kubeconfig``/``--context`` as for kubectl): a static token, a token
file, or an exec plugin such as ``kubectl oidc-login``, run through lightkube's own
authentication classes. A steward thus logs in once, for kubectl and ``pht`` alike.

That token opens the Kubernetes API too, so it is sent only over HTTPS, or plain HTTP to this
machine (a station in a box or a port-forward); a token given explicitly is sent as asked.
Proxies named by ``HTTP_PROXY``/``ALL_PROXY`` are used for HTTPS only (the proxy then relays
encrypted bytes): over plain HTTP a proxy would read every header, the token included.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import urllib.parse
from pathlib import Path
from typing import Final

import httpx2
from lightkube.config.client_adapter import BearerAuth, BearerTokenFileAuth, ExecAuth, user_auth
from lightkube.core.exceptions import ConfigError

from pht_cli import kube
from pht_cli.errors import CliError, one_line

TOKEN_ENV: Final = "PHT_TOKEN"
BEARER: Final = "Bearer "


def add_token_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token", help=f"bearer token (default: ${TOKEN_ENV}, then the kubeconfig user's)"
    )
    parser.add_argument("--token-file", metavar="FILE", help="read the bearer token from FILE")
    kube.add_kubeconfig_options(parser)


def is_local_or_encrypted(url: str) -> bool:
    """HTTPS, or a loopback address / ``localhost`` (nothing crosses the network)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def may_use_environment_proxies(url: str) -> bool:
    """Whether a request to ``url`` may go through the proxies the environment names.

    Only HTTPS: a proxy then sees a tunnel, not the ``Authorization`` header. Plain HTTP goes
    straight to the host, so a ``localhost`` port-forward is never sent to a remote proxy.
    """
    return urllib.parse.urlsplit(url).scheme == "https"


def bearer_token(args: argparse.Namespace) -> str:
    """The token to present to ``args.url``, or a one-line :class:`CliError` saying how to
    give one."""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"cannot read --token-file {args.token_file}: {exc.strerror}") from None
        if not token:
            raise CliError(f"--token-file {args.token_file} is empty")
        return token
    given = args.token or os.environ.get(TOKEN_ENV)
    if given:
        return str(given)
    if not is_local_or_encrypted(args.url):
        raise CliError(
            f"not sending your kubeconfig credential to {args.url} unencrypted: use an "
            f"https:// URL, or give a token for this station: --token, --token-file or "
            f"${TOKEN_ENV}"
        )
    return kubeconfig_token(args.kubeconfig, args.context)


def kubeconfig_token(kubeconfig: Path | None, context: str | None) -> str:
    """The bearer token of the kubeconfig context's user."""
    try:
        target = kube.load_target(kubeconfig, context)
    except CliError as exc:
        raise CliError(
            f"give a bearer token: --token, --token-file or ${TOKEN_ENV} ({exc})"
        ) from None
    user = target.config.user
    if user is None:
        raise CliError(
            f"kubeconfig {target.source}: context {target.config.context_name} names no user; "
            f"give a bearer token: --token, --token-file or ${TOKEN_ENV}"
        )
    try:
        auth = user_auth(user)
    except ConfigError as exc:
        raise CliError(f"kubeconfig {target.source}: {one_line(exc)}") from None
    if not isinstance(auth, BearerAuth | BearerTokenFileAuth | ExecAuth):
        if user.client_cert or user.client_cert_data:
            raise CliError(
                f"kubeconfig user {target.user_name} logs in with a client certificate, which "
                "cannot be forwarded to the station API; give a token instead: --token-file "
                "FILE or $PHT_TOKEN (e.g. from 'kubectl create token')"
            )
        raise CliError(
            f"kubeconfig user {target.user_name} holds no bearer token; give one: --token, "
            f"--token-file or ${TOKEN_ENV}"
        )
    return _token_from(auth, target)


def _token_from(auth: httpx2.Auth, target: kube.KubeTarget) -> str:
    """Let lightkube's auth flow sign a request, and read the token it set."""
    request = httpx2.Request("GET", target.server)
    try:
        signed = next(auth.sync_auth_flow(request))
    except ConfigError as exc:
        raise CliError(f"kubeconfig user {target.user_name}: {one_line(exc)}") from None
    except OSError as exc:
        raise CliError(
            f"kubeconfig user {target.user_name}: cannot run its credential plugin: {exc}"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(
            f"kubeconfig user {target.user_name}: its credential plugin printed no token "
            f"({type(exc).__name__}: {one_line(exc)})"
        ) from None
    header = signed.headers.get("Authorization", "")
    if not header.startswith(BEARER) or not header[len(BEARER) :].strip():
        raise CliError(f"kubeconfig user {target.user_name} yields an empty bearer token")
    return header[len(BEARER) :].strip()
