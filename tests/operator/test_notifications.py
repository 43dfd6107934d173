"""Notifications without a cluster: what a message says, once per wait, bounded per minute,
failures counted and never raised, the settings that configure them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pht_contract import constants
from pht_operator import notifications
from pht_operator.metrics import OperatorMetrics
from pht_operator.notifications import (
    DeliveryError,
    Message,
    Notice,
    Notifier,
    Wait,
    one_line,
    render,
)
from pht_operator.settings import OperatorSettings


def train(
    name: str = "km", *, uid: str | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "pht-requests",
            "uid": uid or f"uid-{name}",
            "annotations": {constants.ANNOTATION_REQUESTED_BY: "oidc:alice"},
        },
        "spec": {"requester": {"name": "Alice Doe"}, "purpose": "survival by stage"},
        "status": status or {},
    }


class Recorder:
    """A channel that keeps what it is given, or fails as told."""

    name = "smtp"

    def __init__(self, fail: BaseException | None = None, hang: bool = False) -> None:
        self.messages: list[Message] = []
        self.fail = fail
        self.hang = hang

    async def deliver(self, message: Message) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail is not None:
            raise self.fail
        self.messages.append(message)


def sample(metrics: OperatorMetrics, channel: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "pht_notifications_total", {"station": "s", "channel": channel, "outcome": outcome}
    )
    assert value is not None
    return value


async def until(predicate: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_one_line_removes_line_breaks_and_controls_and_caps_the_length() -> None:
    assert one_line("a\r\nBcc: x@evil.example\x00\tb") == "a Bcc: x@evil.example b"
    assert one_line("line\u2028separator\u0085next") == "line separator next"
    capped = one_line("x" * 500)
    assert len(capped) == notifications.MAX_VALUE_CHARS and capped.endswith("…")


def test_a_message_names_the_train_and_the_console_page_but_none_of_its_free_text() -> None:
    notice = Notice.of(train(), Wait.APPROVAL)
    message = render(notice, "maastro", "https://station.example")
    assert message.subject == "[maastro] Approval waits: pht-requests/km"
    assert "https://station.example/console/approvals/pht-requests/km" in message.text
    assert "oidc:alice" in message.text
    for free_text in ("Alice Doe", "survival by stage"):
        assert free_text not in message.text and free_text not in str(message.payload)
    assert message.payload["waits"] == "approval" and message.payload["train"] == "km"
    held = render(Notice.of(train(), Wait.RESULT), "maastro", "")
    assert held.payload["console"] == "/console/results/pht-requests/km"


def test_a_creator_with_line_breaks_stays_on_one_capped_line() -> None:
    body = train()
    body["metadata"]["annotations"][constants.ANNOTATION_REQUESTED_BY] = (
        "oidc:mallory\r\nBcc: leak@evil.example\r\n\r\n" + "A" * 1000
    )
    message = render(Notice.of(body, Wait.APPROVAL), "s", "")
    (line,) = [line for line in message.text.splitlines() if line.startswith("Created by:")]
    assert "oidc:mallory Bcc: leak@evil.example A" in line
    assert len(line) < notifications.MAX_VALUE_CHARS + 20
    assert not any(line.startswith("Bcc") for line in message.text.splitlines())


async def test_only_the_pass_that_starts_the_wait_notifies() -> None:
    channel = Recorder()
    notifier = Notifier([channel], station="s")
    notifier.start()
    try:
        notifier.approval_waits(train("a"))
        notifier.approval_waits(train("a"))  # a retried pass: remembered
        notifier.approval_waits(train("b", status={"summary": "AwaitingApproval"}))  # stored
        held = {"conditions": [{"type": "ResultReleased", "reason": "AwaitingRelease"}]}
        notifier.result_held(train("c", status=held))  # stored
        notifier.result_held(train("d"))
        await until(lambda: len(channel.messages) == 2)
        await asyncio.sleep(0.1)
    finally:
        await notifier.stop()
    assert [(m.payload["train"], m.payload["waits"]) for m in channel.messages] == [
        ("a", "approval"),
        ("d", "result"),
    ]


async def test_without_channels_nothing_is_queued() -> None:
    notifier = Notifier.off()
    notifier.approval_waits(train())
    notifier.start()
    await notifier.stop()
    assert notifier._queue.empty()


async def test_a_storm_is_bounded_per_minute_and_the_rest_summarised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notifications, "WINDOW_SECONDS", 0.5)
    metrics = OperatorMetrics("s")
    channel = Recorder()
    notifier = Notifier([channel], station="s", metrics=metrics, max_per_minute=2)
    for index in range(6):
        notifier.approval_waits(train(f"t{index}"))
    notifier.result_held(train("t-held"))
    notifier.start()
    try:
        await until(lambda: len(channel.messages) == 3)
        await asyncio.sleep(0.7)  # another window: nothing more to send
    finally:
        await notifier.stop()
    first, second, summary = channel.messages
    assert [first.payload["train"], second.payload["train"]] == ["t0", "t1"]
    assert summary.payload["kind"] == "TrainsWait"
    assert (summary.payload["approvals"], summary.payload["results"]) == (4, 1)
    assert [t["train"] for t in summary.payload["trains"]] == ["t2", "t3", "t4", "t5", "t-held"]
    assert "5 more Trains" in summary.subject
    assert sample(metrics, "smtp", "sent") == 3
    assert sample(metrics, "smtp", "summarised") == 5


async def test_a_full_queue_drops_and_counts() -> None:
    metrics = OperatorMetrics("s")
    notifier = Notifier([Recorder()], station="s", metrics=metrics, queue_size=1)
    notifier.approval_waits(train("a"))
    notifier.approval_waits(train("b"))
    assert sample(metrics, "smtp", "dropped") == 1


async def test_failures_and_hangs_are_counted_and_later_notices_still_go_out() -> None:
    metrics = OperatorMetrics("s")
    failing = Recorder(fail=DeliveryError("relay refused"))
    notifier = Notifier([failing], station="s", metrics=metrics, timeout_seconds=0.1)
    notifier.start()
    notifier.approval_waits(train("a"))
    await until(lambda: sample(metrics, "smtp", "failed") == 1)
    failing.fail = RuntimeError("a bug")
    notifier.approval_waits(train("b"))
    await until(lambda: sample(metrics, "smtp", "failed") == 2)
    failing.fail, failing.hang = None, True
    notifier.approval_waits(train("c"))
    await until(lambda: sample(metrics, "smtp", "failed") == 3)
    failing.hang = False
    notifier.approval_waits(train("d"))
    await until(lambda: sample(metrics, "smtp", "sent") == 1)
    await notifier.stop()
    assert [m.payload["train"] for m in failing.messages] == ["d"]


def test_settings_configure_both_channels_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    monkeypatch.setenv("PHT_OPERATOR_NOTIFY_SMTP_HOST", "relay.hospital.example")
    monkeypatch.setenv("PHT_OPERATOR_NOTIFY_SMTP_FROM", "pht@hospital.example")
    monkeypatch.setenv("PHT_OPERATOR_NOTIFY_SMTP_TO", "a@hospital.example, b@hospital.example")
    monkeypatch.setenv("PHT_OPERATOR_NOTIFY_WEBHOOK_URL", "https://hooks.hospital.example/pht")
    monkeypatch.setenv("PHT_OPERATOR_NOTIFY_WEBHOOK_SECRET_FILE", str(key))
    monkeypatch.setenv("PHT_OPERATOR_NOTIFY_CONSOLE_URL", "https://station.example/")
    settings = OperatorSettings()
    assert settings.notify_smtp_to == ["a@hospital.example", "b@hospital.example"]
    assert settings.notify_smtp_starttls is True and settings.notify_smtp_port == 587
    assert settings.notify_console_url == "https://station.example"
    assert [c.name for c in notifications.channels_of(settings)] == ["smtp", "webhook"]


def test_notifications_are_off_by_default() -> None:
    assert notifications.channels_of(OperatorSettings()) == []


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"notify_webhook_url": "http://hooks.example/pht"}, "https://"),
        ({"notify_webhook_url": "https://hooks.example/pht"}, "SECRET_FILE"),
        ({"notify_smtp_host": "relay.example"}, "NOTIFY_SMTP_FROM"),
        (
            {
                "notify_smtp_host": "relay.example",
                "notify_smtp_from": "pht@example.org",
                "notify_smtp_to": ["a@example.org\r\nBcc: x@evil.example"],
            },
            "not an e-mail address",
        ),
        ({"notify_smtp_password_file": "/p"}, "NOTIFY_SMTP_USERNAME"),
        ({"notify_smtp_username": "pht", "notify_smtp_starttls": False}, "clear text"),
        ({"notify_console_url": "javascript:alert(1)"}, "http(s) URL"),
    ],
)
def test_incomplete_or_unsafe_notification_settings_are_refused(
    values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        OperatorSettings(**values)
