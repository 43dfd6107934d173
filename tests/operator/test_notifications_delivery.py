"""Notifications end to end: the real operator on the emulated cluster mails a test SMTP relay
on 127.0.0.1 (STARTTLS with a certificate of a throw-away authority, a password from a file)
and posts to an HTTPS webhook receiver there that checks the signature."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from operator_harness import RUN_NS, Harness, run_in_thread
from stationapi_double import Plan

from pht_contract.trains import ReleaseState
from pht_operator.settings import OperatorSettings
from pht_sandbox.controlplane.pki import Authority, KeyPair

STEWARDS = ["steward@hospital.example", "second@hospital.example"]
SENDER = "pht-station@hospital.example"
RELAY_USER, RELAY_PASSWORD = "pht-station", "relay-password"
WEBHOOK_KEY = "webhook-signing-key"
CONSOLE = "https://station.hospital.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Relay:
    """What the test relay received, and how the operator reaches it."""

    port: int
    ca: Path
    password_file: Path
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        ok = data.login.decode() == RELAY_USER and data.password.decode() == RELAY_PASSWORD
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def mails(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(bytes(e.original_content or b""), policy=email.policy.SMTP)
            for e in self.envelopes
        ]

    def mails_about(self, train: str) -> list[EmailMessage]:
        return [m for m in self.mails() if f"/{train}" in str(m["Subject"])]


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "pki")


@pytest.fixture
def serving(authority: Authority) -> KeyPair:
    return authority.serving("notifications")


@pytest.fixture
def relay(tmp_path: Path, authority: Authority, serving: KeyPair) -> Iterator[Relay]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(serving.cert, serving.key)
    password = tmp_path / "relay-password"
    password.write_text(RELAY_PASSWORD + "\n")
    found = Relay(port=free_port(), ca=authority.ca.cert, password_file=password)
    controller = Controller(
        found,
        hostname="127.0.0.1",
        port=found.port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=found.authenticate,
    )
    controller.start()
    try:
        yield found
    finally:
        controller.stop()


def mail_settings(relay: Relay, **more: Any) -> dict[str, Any]:
    return {
        "notify_smtp_host": "127.0.0.1",
        "notify_smtp_port": relay.port,
        "notify_smtp_from": SENDER,
        "notify_smtp_to": STEWARDS,
        "notify_smtp_username": RELAY_USER,
        "notify_smtp_password_file": relay.password_file,
        "notify_ca_file": relay.ca,
        "notify_console_url": CONSOLE,
        "notify_timeout_seconds": 5.0,
        **more,
    }


def configure(bed: Harness, **values: Any) -> None:
    bed.settings = OperatorSettings(**{**bed.settings.model_dump(), **values})


async def until(predicate: Any, timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_pending_approval_is_mailed_once_and_not_again_after_a_restart(
    bed: Harness, relay: Relay
) -> None:
    configure(bed, **mail_settings(relay))
    async with run_in_thread(bed) as harness:
        await harness.apply_policy(approval={"mode": "OneSteward"})
        await harness.create_train("km")
        await harness.wait_summary("km", "AwaitingApproval")
        await until(lambda: relay.mails_about("km"), what="the mail about km")
        await asyncio.sleep(harness.settings.poll_interval_seconds * 4)  # passes go on
    (mail,) = relay.mails_about("km")
    (envelope,) = relay.envelopes
    assert envelope.mail_from == SENDER and envelope.rcpt_tos == STEWARDS
    assert relay.logins == [RELAY_USER]  # after STARTTLS: the relay requires it
    assert mail["From"] == SENDER and mail["To"] == ", ".join(STEWARDS)
    assert mail["Subject"] == "[test-station] Approval waits: pht-requests/km"
    text = mail.get_content()
    assert "Train pht-requests/km waits for a data steward's approval" in text
    assert f"Console:     {CONSOLE}/console/approvals/pht-requests/km" in text.splitlines()
    assert "Created by:  oidc:alice" in text

    async with run_in_thread(bed) as harness:
        await harness.create_train("second")
        await harness.wait_summary("second", "AwaitingApproval")
        await until(lambda: relay.mails_about("second"), what="the mail about second")
        await asyncio.sleep(harness.settings.poll_interval_seconds * 4)
    assert len(relay.mails_about("km")) == 1  # the restarted operator did not send it again
    assert len(relay.envelopes) == 2


async def test_researcher_text_cannot_add_headers_or_recipients(bed: Harness, relay: Relay) -> None:
    configure(bed, **mail_settings(relay))
    injected = "\r\nBcc: leak@evil.example\r\nSubject: released\r\n\r\n"
    async with run_in_thread(bed) as harness:
        await harness.apply_policy(approval={"mode": "OneSteward"})
        await harness.create_train(
            "km",
            requested_by="oidc:mallory" + injected + "x" * 2000,
            requester={"name": "Mallory" + injected},
            purpose="click https://evil.example/login" + injected,
        )
        await harness.wait_summary("km", "AwaitingApproval")
        await until(lambda: relay.mails_about("km"), what="the mail")
    (envelope,) = relay.envelopes
    assert envelope.rcpt_tos == STEWARDS
    (mail,) = relay.mails()
    headers = ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"]
    mime = ["Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    assert sorted(mail.keys()) == sorted([*headers, *mime])
    assert mail["Subject"] == "[test-station] Approval waits: pht-requests/km"
    text = mail.get_content()
    (creator,) = [line for line in text.splitlines() if line.startswith("Created by:")]
    assert creator.startswith("Created by:  oidc:mallory Bcc: leak@evil.example Subject:")
    assert len(creator) <= len("Created by:  ") + 128
    assert "Mallory" not in text and "evil.example/login" not in text


async def test_a_relay_that_is_down_leaves_the_train_alone_and_is_counted(bed: Harness) -> None:
    closed = free_port()
    configure(
        bed,
        notify_smtp_host="127.0.0.1",
        notify_smtp_port=closed,
        notify_smtp_from=SENDER,
        notify_smtp_to=STEWARDS,
        notify_timeout_seconds=2.0,
        metrics_port=free_port(),
    )
    async with run_in_thread(bed) as harness:
        await harness.apply_policy(approval={"mode": "OneSteward"})
        await harness.create_train("km")
        await harness.wait_summary("km", "AwaitingApproval")
        url = f"http://127.0.0.1:{harness.settings.metrics_port}/metrics"
        failed = 'pht_notifications_total{channel="smtp",outcome="failed",station="test-station"}'

        async def failures() -> float:
            async with httpx.AsyncClient() as client:
                text = (await client.get(url)).text
            values = [line.split()[-1] for line in text.splitlines() if line.startswith(failed)]
            return float(values[0]) if values else 0.0

        deadline = time.monotonic() + 20
        while await failures() < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await failures() == 1
        await harness.approve("km", "steward@maastro.example")
        await harness.wait_summary("km", "Queued")


@pytest.fixture
async def webhook(
    serving: KeyPair, tmp_path: Path
) -> AsyncIterator[tuple[str, list[aiohttp.web.Request], list[bytes]]]:
    """An HTTPS receiver on 127.0.0.1 that refuses anything without a valid, fresh signature."""
    requests: list[aiohttp.web.Request] = []
    bodies: list[bytes] = []

    async def receive(request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.read()
        stamp = request.headers.get("X-PHT-Timestamp", "")
        expected = hmac.new(
            WEBHOOK_KEY.encode(), stamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        given = request.headers.get("X-PHT-Signature", "")
        if not hmac.compare_digest(given, f"sha256={expected}"):
            return aiohttp.web.Response(status=401)
        if abs(time.time() - int(stamp)) > 300:
            return aiohttp.web.Response(status=401)
        requests.append(request)
        bodies.append(body)
        return aiohttp.web.Response(status=204)

    app = aiohttp.web.Application()
    app.router.add_post("/pht", receive)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(serving.cert, serving.key)
    port = free_port()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    try:
        yield f"https://127.0.0.1:{port}/pht", requests, bodies
    finally:
        await runner.cleanup()


async def test_a_held_result_is_posted_to_the_webhook_signed(
    bed: Harness,
    authority: Authority,
    tmp_path: Path,
    webhook: tuple[str, list[aiohttp.web.Request], list[bytes]],
) -> None:
    url, requests, bodies = webhook
    key = tmp_path / "webhook-key"
    key.write_text(WEBHOOK_KEY)
    configure(
        bed,
        notify_webhook_url=url,
        notify_webhook_secret_file=key,
        notify_ca_file=authority.ca.cert,
        notify_console_url=CONSOLE,
    )
    bed.station.plan_for = lambda registration: Plan(
        uploads=1, release=ReleaseState.HELD, rule="ModelNeedsReview"
    )
    async with run_in_thread(bed) as harness:
        await harness.apply_policy()
        await harness.create_train("model")
        await harness.wait_summary("model", "Queued")
        job = harness.job_name("model")
        await harness.jobs.run(RUN_NS, job)
        await harness.jobs.succeed(RUN_NS, job)
        await harness.wait_summary("model", "AwaitingRelease")
        await until(lambda: bodies, what="the webhook")
        await asyncio.sleep(harness.settings.poll_interval_seconds * 4)
    (body,) = bodies
    payload = json.loads(body)
    assert payload["kind"] == "TrainWaits" and payload["waits"] == "result"
    assert (payload["namespace"], payload["train"]) == ("pht-requests", "model")
    assert payload["console"] == f"{CONSOLE}/console/results/pht-requests/model"
    assert payload["createdBy"] == "oidc:alice"
    assert "ModelNeedsReview" not in body.decode()  # the gate's findings stay in the console
    assert requests[0].headers["Content-Type"] == "application/json"


async def test_a_webhook_with_the_wrong_key_is_refused_and_counted(
    bed: Harness,
    authority: Authority,
    tmp_path: Path,
    webhook: tuple[str, list[aiohttp.web.Request], list[bytes]],
) -> None:
    url, _, bodies = webhook
    key = tmp_path / "webhook-key"
    key.write_text("not-the-receivers-key")
    configure(
        bed,
        notify_webhook_url=url,
        notify_webhook_secret_file=key,
        notify_ca_file=authority.ca.cert,
        metrics_port=free_port(),
    )
    async with run_in_thread(bed) as harness:
        await harness.apply_policy(approval={"mode": "OneSteward"})
        await harness.create_train("km")
        await harness.wait_summary("km", "AwaitingApproval")
        url = f"http://127.0.0.1:{harness.settings.metrics_port}/metrics"
        failed = (
            'pht_notifications_total{channel="webhook",outcome="failed",station="test-station"} 1.0'
        )

        async def counted() -> bool:
            async with httpx.AsyncClient() as client:
                return failed in (await client.get(url)).text

        deadline = time.monotonic() + 20
        while not await counted() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await counted()
        assert harness.summary("km") == "AwaitingApproval"
    assert bodies == []
