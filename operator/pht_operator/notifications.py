"""Notifications: a steward learns that an approval or a held result waits without watching the
console, by e-mail through the hospital's SMTP relay and/or a signed HTTPS webhook.

What a message says: the station, the Train (namespace/name), what waits, the console page to
open, and who created the Train (the identity the station's admission policy recorded), on one
line and capped. Never the Train's free text (requester name, purpose), never data, never a
result's contents: mail leaves the station through systems it does not control, and the console
shows everything else to a signed-in steward.

Once per event: the pass that moves a Train into waiting notifies, and the status it writes is
the record that it did. Every later pass, and an operator started afresh, finds the wait in the
stored status and sends nothing. A pass whose status write is refused runs again; this process
remembers what it queued, so the retry sends nothing either.

Never in the way: a pass only puts a notice on a bounded queue; one background task delivers,
each delivery under a timeout, at most ``notify_max_per_minute`` messages a minute, the excess
gathered into one summary. Failures are logged and counted in ``pht_notifications``; they never
touch a Train.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

import httpx2

from pht_contract import constants
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.objects import Obj
from pht_contract.times import utc_iso
from pht_operator.metrics import NOTIFICATION_CHANNELS, OperatorMetrics
from pht_operator.settings import OperatorSettings
from pht_operator.statuses import reason_of

logger = logging.getLogger("pht_operator.notifications")

#: Webhook headers: the Unix time of sending, and ``sha256=<hex>`` of HMAC-SHA256 over
#: ``<timestamp>.<body>`` with the shared key (a receiver refuses old timestamps: no replay).
TIMESTAMP_HEADER = "X-PHT-Timestamp"
SIGNATURE_HEADER = "X-PHT-Signature"
#: Longest a value taken from a Train may be in a message (characters).
MAX_VALUE_CHARS = 128
#: Longest Kubernetes name (namespace or Train).
MAX_NAME_CHARS = 253
#: Trains a summary names at most; the rest are counted.
MAX_SUMMARY_TRAINS = 20
#: Notices this process remembers having queued (the oldest are forgotten first).
REMEMBERED_NOTICES = 10_000
#: The window ``notify_max_per_minute`` counts in.
WINDOW_SECONDS = 60.0
#: How long a stopping operator waits for queued notifications to go out.
DRAIN_SECONDS = 5.0


class Wait(enum.StrEnum):
    """What waits for a steward."""

    APPROVAL = "approval"
    RESULT = "result"


#: The console's list of each (a Train's own page is below it: ``<list>/<namespace>/<name>``).
CONSOLE_PAGES = {Wait.APPROVAL: "/console/approvals", Wait.RESULT: "/console/results"}
_SUBJECTS = {Wait.APPROVAL: "Approval waits", Wait.RESULT: "Result held for review"}
_SENTENCES = {
    Wait.APPROVAL: "waits for a data steward's approval before its run starts",
    Wait.RESULT: "finished its run; its result is held for a data steward's review",
}


def one_line(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` safe for a mail header or one body line: every control character (CR and LF
    among them) and every line or paragraph separator becomes a space, runs of spaces become
    one, and at most ``limit`` characters remain (an ellipsis marks the cut)."""
    printable = "".join(char if char.isprintable() else " " for char in text)
    collapsed = " ".join(printable.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """The webhook signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Notice:
    """One Train that started to wait; its values already made safe for a message."""

    wait: Wait
    namespace: str
    train: str
    created_by: str | None

    @classmethod
    def of(cls, body: Obj, wait: Wait) -> Notice:
        meta = body["metadata"]
        creator = (meta.get("annotations") or {}).get(constants.ANNOTATION_REQUESTED_BY)
        return cls(
            wait=wait,
            namespace=one_line(str(meta["namespace"]), MAX_NAME_CHARS),
            train=one_line(str(meta["name"]), MAX_NAME_CHARS),
            created_by=one_line(str(creator)) if creator else None,
        )


@dataclass(frozen=True)
class Message:
    """One notification, as mail (subject and text) and as the webhook's JSON payload."""

    subject: str
    text: str
    payload: dict[str, Any]


@dataclass
class Backlog:
    """Notices held back while the minute's messages are used up: counted, a few named."""

    notices: list[Notice] = field(default_factory=list)
    counts: collections.Counter[Wait] = field(default_factory=collections.Counter)

    def add(self, notice: Notice) -> None:
        self.counts[notice.wait] += 1
        if len(self.notices) < MAX_SUMMARY_TRAINS:
            self.notices.append(notice)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _console(base: str, wait: Wait | None) -> str:
    return base + (CONSOLE_PAGES[wait] if wait is not None else "/console/")


def _train_page(base: str, notice: Notice) -> str:
    """The console page where a steward decides on this Train."""
    path = "/".join(urllib.parse.quote(part, safe="") for part in (notice.namespace, notice.train))
    return f"{_console(base, notice.wait)}/{path}"


def render(notice: Notice, station: str, console_base: str) -> Message:
    """The message about one Train."""
    station = one_line(station)
    train = f"{notice.namespace}/{notice.train}"
    console = _train_page(console_base, notice)
    creator = notice.created_by or "unknown (the admission policy recorded no creator)"
    text = (
        f"Station {station}: Train {train} {_SENTENCES[notice.wait]}.\n"
        "\n"
        f"Train:       {train}\n"
        f"Created by:  {creator}\n"
        f"Waits for:   {notice.wait.value}\n"
        f"Console:     {console}\n"
        "\n"
        "This notice carries no data and none of the Train's own text; open the console to "
        "review the Train.\n"
    )
    payload = {
        "kind": "TrainWaits",
        "station": station,
        "waits": notice.wait.value,
        "namespace": notice.namespace,
        "train": notice.train,
        "createdBy": notice.created_by,
        "console": console,
        "sentAt": utc_iso(),
    }
    return Message(f"[{station}] {_SUBJECTS[notice.wait]}: {train}", text, payload)


def render_summary(backlog: Backlog, station: str, console_base: str) -> Message:
    """One message for the Trains held back under a storm."""
    station = one_line(station)
    approvals, results = backlog.counts[Wait.APPROVAL], backlog.counts[Wait.RESULT]
    lines = [f"- {n.namespace}/{n.train} ({n.wait.value})" for n in backlog.notices]
    unnamed = backlog.total - len(backlog.notices)
    if unnamed:
        lines.append(f"- and {unnamed} more")
    text = (
        f"Station {station}: {backlog.total} more Trains started to wait for data stewards "
        f"within a minute ({approvals} for approval, {results} with a held result).\n"
        "\n" + "\n".join(lines) + "\n\n"
        f"Approvals: {_console(console_base, Wait.APPROVAL)}\n"
        f"Held results: {_console(console_base, Wait.RESULT)}\n"
    )
    payload = {
        "kind": "TrainsWait",
        "station": station,
        "approvals": approvals,
        "results": results,
        "trains": [
            {"namespace": n.namespace, "train": n.train, "waits": n.wait.value}
            for n in backlog.notices
        ],
        "console": _console(console_base, None),
        "sentAt": utc_iso(),
    }
    subject = f"[{station}] {backlog.total} more Trains wait for stewards"
    return Message(subject, text, payload)


class DeliveryError(Exception):
    """A channel could not deliver (its reason, without the message)."""


class Channel(Protocol):
    """Where notifications go."""

    @property
    def name(self) -> str: ...

    async def deliver(self, message: Message) -> None: ...


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name checked, against ``ca_file`` or the system's authorities."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _secret(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise DeliveryError(f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise DeliveryError(f"{path} is empty")
    return value


class SmtpChannel:
    """E-mail through the hospital's relay; STARTTLS with a verified certificate unless turned
    off, then the password (read from its file at each mail) if a user name is set."""

    name = "smtp"

    def __init__(self, settings: OperatorSettings) -> None:
        self._settings = settings

    async def deliver(self, message: Message) -> None:
        settings = self._settings
        mail = EmailMessage()
        mail["From"] = settings.notify_smtp_from
        mail["To"] = ", ".join(settings.notify_smtp_to)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain=settings.notify_smtp_from.rsplit("@", 1)[1])
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text)
        try:
            await asyncio.to_thread(self._send, mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    def _send(self, mail: EmailMessage) -> None:
        settings = self._settings
        timeout = settings.notify_timeout_seconds
        with smtplib.SMTP(
            settings.notify_smtp_host, settings.notify_smtp_port, timeout=timeout
        ) as smtp:
            if settings.notify_smtp_starttls:
                smtp.starttls(context=tls_context(settings.notify_ca_file))
            if settings.notify_smtp_username:
                password = (
                    _secret(settings.notify_smtp_password_file)
                    if settings.notify_smtp_password_file
                    else ""
                )
                smtp.login(settings.notify_smtp_username, password)
            smtp.send_message(mail)


class WebhookChannel:
    """A JSON POST to an HTTPS endpoint, signed with the key from its file (read at each POST)."""

    name = "webhook"

    def __init__(self, settings: OperatorSettings) -> None:
        self._settings = settings

    async def deliver(self, message: Message) -> None:
        settings = self._settings
        assert settings.notify_webhook_secret_file is not None
        key = _secret(settings.notify_webhook_secret_file).encode("utf-8")
        body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(key, timestamp, body),
        }
        try:
            async with httpx2.AsyncClient(
                verify=tls_context(settings.notify_ca_file),
                timeout=settings.notify_timeout_seconds,
            ) as client:
                answer = await client.post(
                    settings.notify_webhook_url, content=body, headers=headers
                )
        except (OSError, httpx2.HTTPError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not answer.is_success:
            raise DeliveryError(f"the webhook answered {answer.status_code}")


def channels_of(settings: OperatorSettings) -> list[Channel]:
    """The channels the settings configure (none: notifications are off)."""
    found: list[Channel] = []
    if settings.notify_smtp_host:
        found.append(SmtpChannel(settings))
    if settings.notify_webhook_url:
        found.append(WebhookChannel(settings))
    return found


class Notifier:
    """Queues a notice when a pass moves a Train into waiting, and delivers in the background."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        station: str = "station",
        console_base: str = "",
        metrics: OperatorMetrics | None = None,
        max_per_minute: int = 10,
        queue_size: int = 100,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channels = list(channels)
        self._station = station
        self._console_base = console_base
        self._metrics = metrics
        self._max_per_minute = max_per_minute
        self._timeout = timeout_seconds
        self._clock = clock
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=queue_size)
        self._queued: collections.OrderedDict[tuple[str, Wait], None] = collections.OrderedDict()
        self._sent_at: collections.deque[float] = collections.deque()
        self._backlog = Backlog()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: OperatorSettings, metrics: OperatorMetrics) -> Notifier:
        return cls(
            channels_of(settings),
            station=settings.station_name,
            console_base=settings.notify_console_url,
            metrics=metrics,
            max_per_minute=settings.notify_max_per_minute,
            queue_size=settings.notify_queue_size,
            timeout_seconds=settings.notify_timeout_seconds,
        )

    @classmethod
    def off(cls) -> Notifier:
        """A notifier without channels: every notice is ignored."""
        return cls(())

    # --- what a pass calls ---------------------------------------------------------------------

    def approval_waits(self, body: Obj) -> None:
        """A pass sets the Train waiting for approval: notify unless its stored status
        already waits (an earlier pass notified)."""
        if (body.get("status") or {}).get("summary") != Summary.AWAITING_APPROVAL:
            self._notice(body, Wait.APPROVAL)

    def result_held(self, body: Obj) -> None:
        """A pass records the result as held for review: notify unless its stored status
        already says so."""
        stored = reason_of(body.get("status") or {}, ConditionType.RESULT_RELEASED)
        if stored != Reason.AWAITING_RELEASE:
            self._notice(body, Wait.RESULT)

    def _notice(self, body: Obj, wait: Wait) -> None:
        if not self._channels:
            return
        key = (str(body["metadata"]["uid"]), wait)
        if key in self._queued:
            return
        self._queued[key] = None
        while len(self._queued) > REMEMBERED_NOTICES:
            self._queued.popitem(last=False)
        notice = Notice.of(body, wait)
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            logger.warning(
                "notification queue full: no %s notice for Train %s/%s",
                wait.value,
                notice.namespace,
                notice.train,
            )
            self._count_each("dropped")

    # --- the background task -------------------------------------------------------------------

    def start(self) -> None:
        if self._channels and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._deliver_all())

    async def stop(self) -> None:
        """Let queued notices go out for a few seconds, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_SECONDS)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _deliver_all(self) -> None:
        while True:
            if self._backlog.total and self._room():
                backlog, self._backlog = self._backlog, Backlog()
                await self._send(render_summary(backlog, self._station, self._console_base))
                continue
            wait = self._until_room() if self._backlog.total else None
            try:
                notice = await asyncio.wait_for(self._queue.get(), wait)
            except TimeoutError:
                continue
            try:
                if self._backlog.total or not self._room():
                    self._backlog.add(notice)
                    self._count_each("summarised")
                else:
                    await self._send(render(notice, self._station, self._console_base))
            finally:
                self._queue.task_done()

    def _room(self) -> bool:
        """Whether another message may go out in this minute."""
        now = self._clock()
        while self._sent_at and self._sent_at[0] <= now - WINDOW_SECONDS:
            self._sent_at.popleft()
        return len(self._sent_at) < self._max_per_minute

    def _until_room(self) -> float:
        return max(0.0, self._sent_at[0] + WINDOW_SECONDS - self._clock()) if self._sent_at else 0.0

    async def _send(self, message: Message) -> None:
        self._sent_at.append(self._clock())
        for channel in self._channels:
            try:
                await asyncio.wait_for(channel.deliver(message), self._timeout * 2)
            except (DeliveryError, TimeoutError) as exc:
                reason = str(exc) or "timed out"
                logger.warning("notification by %s not delivered: %s", channel.name, reason)
                self._count(channel.name, "failed")
            except Exception:  # a notification never stops the operator
                logger.exception("notification by %s not delivered", channel.name)
                self._count(channel.name, "failed")
            else:
                self._count(channel.name, "sent")

    def _count(self, channel: str, outcome: str) -> None:
        if self._metrics is not None and channel in NOTIFICATION_CHANNELS:
            self._metrics.notification(channel, outcome)

    def _count_each(self, outcome: str) -> None:
        for channel in self._channels:
            self._count(channel.name, outcome)
