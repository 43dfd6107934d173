"""A real OpenID provider on 127.0.0.1 (the `oidc-provider` package on Node.js, installed by
`make tools` from tools/oidc-provider), standing in for a hospital's identity provider.

It serves HTTPS with a certificate from a throw-away CA and signs ID tokens with an RSA key made
here, so tests can check what it issues and forge what it would never issue. Its users sign in
on its own page with a password; the provider does all of the protocol.
"""

import base64
import json
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pht_sandbox.controlplane.binaries import repository_root
from pht_sandbox.controlplane.pki import Authority
from pht_sandbox.controlplane.processes import Component, ControlPlaneError, free_port

FETCH_SCRIPT = Path("tools") / "fetch-oidc-provider.sh"
SERVER = Path("tools") / "oidc-provider" / "server.mjs"
START_TIMEOUT_SECONDS = 60.0
#: The clients of a hospital's provider as the station uses it: `pht login` (public, loopback
#: redirect) and the steward console (confidential).
CLI_CLIENT_ID = "pht-cli"
CONSOLE_CLIENT_ID = "pht-console"
#: The provider's groups for the station's roles (the cluster sees them with its prefix).
STEWARD_GROUP = "pht-stewards"
RESEARCHER_GROUP = "pht-researchers"


@dataclass(frozen=True)
class OidcUser:
    """A person the provider knows: signs in with username and password."""

    username: str
    password: str
    email: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class OidcClient:
    """An application registered with the provider. Without a secret it is a public client
    (a command-line tool on a loopback redirect, RFC 8252); with one it is confidential."""

    client_id: str
    redirect_uris: tuple[str, ...]
    secret: str | None = None

    def metadata(self) -> dict[str, Any]:
        common: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        if self.secret is None:
            return {**common, "application_type": "native", "token_endpoint_auth_method": "none"}
        return {
            **common,
            "client_secret": self.secret,
            "token_endpoint_auth_method": "client_secret_basic",
        }


def hospital_people() -> dict[str, OidcUser]:
    """Two stewards, a researcher and someone with no role here, with fresh passwords."""

    def person(name: str, *groups: str) -> OidcUser:
        email = f"{name}@hospital.example"
        return OidcUser(name, secrets.token_urlsafe(16), email, groups)

    return {
        "steward": person("erin", STEWARD_GROUP),
        "steward2": person("frank", STEWARD_GROUP, "cardiology"),
        "researcher": person("grace", RESEARCHER_GROUP),
        "nobody": person("nadia", "radiology"),
    }


def hospital_provider(
    workdir: Path, console_redirect_url: str, id_token_seconds: int = 3600
) -> "OpenIdProvider":
    """A provider with `hospital_people()` and the station's two clients (not started)."""
    people = hospital_people()
    clients = (
        OidcClient(CLI_CLIENT_ID, ("http://127.0.0.1/callback",)),
        OidcClient(CONSOLE_CLIENT_ID, (console_redirect_url,), secrets.token_urlsafe(32)),
    )
    return OpenIdProvider(workdir, people, clients, id_token_seconds)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def private_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    """The key as a private JSON Web Key (RFC 7518, section 6.3)."""
    numbers = key.private_numbers()
    public = numbers.public_numbers
    values = {
        "n": public.n,
        "e": public.e,
        "d": numbers.d,
        "p": numbers.p,
        "q": numbers.q,
        "dp": numbers.dmp1,
        "dq": numbers.dmq1,
        "qi": numbers.iqmp,
    }
    return {"kty": "RSA", "kid": kid, **{k: _b64url_uint(v) for k, v in values.items()}}


def trusting(ca: Path) -> ssl.SSLContext:
    """A TLS context that trusts only this CA."""
    return ssl.create_default_context(cafile=str(ca))


def provider_folder() -> Path:
    """The checkout's tools/oidc-provider, once `make tools` has installed its modules."""
    root = repository_root()
    if root is None:
        raise ControlPlaneError(f"the OpenID provider runs from a source checkout ({SERVER})")
    if shutil.which("node") is None:
        raise ControlPlaneError("no 'node' on PATH: the OpenID provider needs Node.js 20.19+")
    done = subprocess.run(
        ["bash", str(root / FETCH_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise ControlPlaneError(f"{done.stderr.strip()}; install it with 'make tools'")
    return (root / SERVER).parent


@dataclass
class OpenIdProvider:
    """Start with `start()`, stop with `stop()`; `issuer` and `ca` are what clients trust."""

    workdir: Path
    people: dict[str, OidcUser]
    clients: tuple[OidcClient, ...]
    id_token_seconds: int = 3600
    issuer: str = ""
    component: Component | None = None
    signing_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    key_id: str = field(default_factory=lambda: secrets.token_hex(8))
    _authority: Authority | None = None

    @property
    def ca(self) -> Path:
        """The CA certificate that signed the provider's serving certificate."""
        assert self._authority is not None, "start() the provider first"
        return self._authority.ca.cert

    @property
    def signing_key_pem(self) -> bytes:
        return self.signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def client(self, client_id: str) -> OidcClient:
        return next(c for c in self.clients if c.client_id == client_id)

    def start(self) -> None:
        folder = provider_folder()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._authority is None:
            self._authority = Authority(self.workdir / "pki")
            port = free_port()
            self.issuer = f"https://127.0.0.1:{port}"
        serving = self._authority.serving("provider")
        key_file = self.workdir / "signing-key.json"
        key_file.write_text(json.dumps(private_jwk(self.signing_key, self.key_id)))
        key_file.chmod(0o600)
        config = {
            "issuer": self.issuer,
            "tls": {"cert": str(serving.cert), "key": str(serving.key)},
            "signingKey": str(key_file),
            "idTokenSeconds": self.id_token_seconds,
            "clients": [client.metadata() for client in self.clients],
            "users": [
                {
                    "username": user.username,
                    "password": user.password,
                    "email": user.email,
                    "groups": list(user.groups),
                }
                for user in self.people.values()
            ],
        }
        config_file = self.workdir / "provider.json"
        config_file.write_text(json.dumps(config, indent=2))
        config_file.chmod(0o600)
        self.component = Component(
            "oidc-provider",
            ["node", str(folder / "server.mjs"), str(config_file)],
            self.workdir / "oidc-provider.log",
        )
        self.component.start()
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        self.component.wait_until(
            lambda: httpx.get(discovery, verify=trusting(self.ca), timeout=2).status_code == 200,
            START_TIMEOUT_SECONDS,
            "serving its discovery document",
        )

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()


class SignInRefused(RuntimeError):
    """The provider kept showing its sign-in page: unknown user or wrong password."""


def browser_sign_in(authorize_url: str, issuer: str, ca: Path, username: str, password: str) -> str:
    """What a person's browser does: open the authorization URL, type username and password
    into the provider's own sign-in page, and follow the provider's redirects. Returns the URL
    the provider finally redirects to outside itself (the client's redirect URI, with the code
    or an error)."""
    with httpx.Client(verify=trusting(ca), timeout=10) as browser:
        url = authorize_url
        for _ in range(20):
            if not url.startswith(issuer + "/"):
                return url
            answer = browser.get(url)
            if answer.is_redirect:
                url = str(answer.url.join(answer.headers["location"]))
                continue
            if answer.status_code != 200 or "/interaction/" not in str(answer.url):
                raise SignInRefused(f"the provider answered {answer.status_code}: {answer.text}")
            posted = browser.post(
                f"{answer.url}/login", data={"login": username, "password": password}
            )
            if not posted.is_redirect:
                raise SignInRefused(f"sign-in as {username} refused ({posted.status_code})")
            url = str(posted.url.join(posted.headers["location"]))
        raise SignInRefused("the provider redirected too often")


def sign_in_on_loopback(
    provider: "OpenIdProvider", person: OidcUser, printed: Iterator[str], timeout: float = 30.0
) -> str:
    """The browser step of a command-line sign-in (`pht login`): take the authorization URL
    from the lines the command prints, sign in there as `person`, and deliver the provider's
    answer to the command's loopback callback. Returns the callback's page."""
    deadline = time.monotonic() + timeout
    for line in printed:
        if line.startswith(provider.issuer + "/"):
            callback = browser_sign_in(
                line.strip(), provider.issuer, provider.ca, person.username, person.password
            )
            answer = httpx.get(callback, timeout=max(1.0, deadline - time.monotonic()))
            return answer.text
        if time.monotonic() > deadline:
            break
    raise SignInRefused("the command printed no authorization URL")
