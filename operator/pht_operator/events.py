"""Kubernetes Events on Trains: ``kubectl describe train`` tells the story.

Posted by the operator itself (not Kopf's poster, which only works inside Kopf's per-object
handler context, while passes run in the operator's own workers). Posting never blocks a pass
and never fails it: an Event is a courtesy to humans, the status is the record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import socket
import time

from pht_contract import constants
from pht_contract.objects import Obj
from pht_contract.times import utc_now
from pht_operator.kube import EVENTS, ApiError, KubeClient

logger = logging.getLogger("pht_operator.events")

#: ``reportingController`` of every Event the operator posts.
CONTROLLER = f"{constants.API_GROUP}/operator"


def reporting_instance() -> str:
    """This operator process: ``<controller>-<host name>`` (the pod name in a cluster)."""
    return f"pht-station-operator-{socket.gethostname()}"[:128]


def event_name(train_name: str) -> str:
    """``<train>.<nanoseconds in hex><random>``, as client-go names Events. Not ``generateName``
    ending in ``.``: the API server validates that prefix as a name, and a name may not end in
    ``.``."""
    return f"{train_name[:200]}.{time.time_ns():x}{secrets.token_hex(2)}"


def build_event(body: Obj, kind: str, reason: str, message: str, action: str) -> Obj:
    """An ``events.k8s.io/v1`` Event about a Train; ``eventTime`` in microseconds, so Events
    of one second keep their order."""
    meta = body["metadata"]
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": event_name(meta["name"]), "namespace": meta["namespace"]},
        "eventTime": utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": CONTROLLER,
        "reportingInstance": reporting_instance(),
        "action": action[:128],
        "reason": reason[:128],
        "note": message[:1024],
        "type": kind,
        "regarding": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
    }


class EventPoster:
    """Posts Events in the background; the Events about one Train reach the API server in the
    order they were raised (each waits for the one before it), so ``kubectl describe`` and
    anything else ordering them by arrival tells the story in order."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._tasks: set[asyncio.Task[None]] = set()
        #: The last Event still being posted per Train (by uid).
        self._last: dict[str, asyncio.Task[None]] = {}

    def __call__(self, body: Obj, kind: str, reason: str, message: str, action: str) -> None:
        event = build_event(body, kind, reason, message, action)
        uid = str(body["metadata"]["uid"])
        task = asyncio.get_running_loop().create_task(self._post(event, self._last.get(uid)))
        self._tasks.add(task)
        self._last[uid] = task
        task.add_done_callback(functools.partial(self._posted, uid))

    def _posted(self, uid: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._last.get(uid) is task:
            del self._last[uid]

    async def _post(self, event: Obj, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            await asyncio.wait({after})  # whatever became of it
        try:
            await self._kube.create(EVENTS, event["metadata"]["namespace"], event)
        except ApiError as exc:
            logger.debug("event not posted: %s", exc.code)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
