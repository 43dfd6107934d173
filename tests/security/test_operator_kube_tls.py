"""The operator's Kubernetes and station API connections check the server as the kubeconfig
says: the cluster CA (file or inline), the server's name, `insecure-skip-tls-verify`, and the
operator's client certificate; the credential goes only to a server that passed."""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lightkube.config.kubeconfig import KubeConfig

from pht_operator.kube import SECRETS, ApiError, KubeClient
from pht_operator.stationapi import StationApi, StationApiError

TOKEN = "operator-token-for-the-test"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str, issuer: tuple[x509.Name, Any] | None, *, ca: bool, san: x509.GeneralName | None
) -> tuple[bytes, bytes, x509.Name, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, key_pem, _name(subject), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cluster CA, a server certificate for 127.0.0.1, one for another name, and a client
    certificate, all from the CA."""
    root = tmp_path_factory.mktemp("pki")
    ca_pem, _, ca_name, ca_key = _issue("cluster-ca", None, ca=True, san=None)
    files = {"ca": ca_pem}
    local = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    for label, san in (("server", local), ("other", x509.DNSName("not-this-server.example"))):
        pem, key, _, _ = _issue(label, (ca_name, ca_key), ca=False, san=san)
        files[label], files[f"{label}-key"] = pem, key
    pem, key, _, _ = _issue("pht-operator", (ca_name, ca_key), ca=False, san=None)
    files["client"], files["client-key"] = pem, key
    paths = {}
    for label, data in files.items():
        paths[label] = root / f"{label}.pem"
        paths[label].write_bytes(data)
    return paths


@contextlib.asynccontextmanager
async def tls_server(
    pki: dict[str, Path], cert: str, seen: list[str | None], client_ca: bool = False
) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"uid": "u", "registered": False})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki[cert], pki[f"{cert}-key"])
    if client_ca:
        context.load_verify_locations(pki["ca"])
        context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _config(url: str, cluster: dict[str, Any], user: dict[str, Any] | None = None) -> KubeConfig:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": url, **cluster}}],
            "users": [{"name": "u", "user": {"token": TOKEN, **(user or {})}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


async def _get(config: KubeConfig) -> None:
    kube = KubeClient.from_config(config, timeout=5.0)
    try:
        await kube.get(SECRETS, "pht-runs", "s")
    finally:
        await kube.aclose()


def _inline(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.mark.parametrize("how", ["certificate-authority", "certificate-authority-data"])
async def test_the_cluster_ca_from_the_kubeconfig_is_trusted(
    pki: dict[str, Path], how: str
) -> None:
    seen: list[str | None] = []
    ca = str(pki["ca"]) if how == "certificate-authority" else _inline(pki["ca"])
    async with tls_server(pki, "server", seen) as url:
        await _get(_config(url, {how: ca}))
    assert seen == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize(
    ("cert", "cluster"),
    [
        ("server", {}),  # no CA named: the system's CAs do not know the cluster's
        ("other", {"certificate-authority": "CA"}),  # the CA's certificate for another name
    ],
)
async def test_a_server_that_fails_the_check_never_receives_the_credential(
    pki: dict[str, Path], cert: str, cluster: dict[str, Any]
) -> None:
    seen: list[str | None] = []
    cluster = {key: str(pki["ca"]) for key in cluster}
    async with tls_server(pki, cert, seen) as url:
        with pytest.raises(ApiError) as failed:
            await _get(_config(url, cluster))
    assert failed.value.code == 503
    assert seen == []


async def test_insecure_skip_tls_verify_is_honoured_as_written(pki: dict[str, Path]) -> None:
    seen: list[str | None] = []
    async with tls_server(pki, "other", seen) as url:
        await _get(_config(url, {"insecure-skip-tls-verify": True}))
    assert seen == [f"Bearer {TOKEN}"]


async def test_the_client_certificate_of_the_kubeconfig_is_presented(pki: dict[str, Path]) -> None:
    seen: list[str | None] = []
    async with tls_server(pki, "server", seen, client_ca=True) as url:
        with pytest.raises(ApiError):
            await _get(_config(url, {"certificate-authority": str(pki["ca"])}))
        user = {
            "client-certificate-data": _inline(pki["client"]),
            "client-key-data": _inline(pki["client-key"]),
        }
        await _get(_config(url, {"certificate-authority": str(pki["ca"])}, user))
    assert seen == [f"Bearer {TOKEN}"]


async def test_an_https_station_api_is_checked_against_the_systems_cas(
    pki: dict[str, Path],
) -> None:
    seen: list[str | None] = []
    async with tls_server(pki, "server", seen) as url:
        station = StationApi(url, lambda: "operator-internal-credential", timeout=5.0)
        try:
            with pytest.raises(StationApiError):
                await station.state("u")
        finally:
            await station.aclose()
    assert seen == []
