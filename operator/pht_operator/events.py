"""Kubernetes Events on Trains: ``kubectl describe train`` tells the story.

Posted by the operator itself (not Kopf's poster, which only works inside Kopf's per-object
handler context, while passes run in the operator's own workers). Posting never blocks a pass
and never fails it: an Event is a courtesy to humans, the status is the record.
"""

from __future__ import annotations

import asyncio
import logging

from lightkube.resources.core_v1 import Event

from pht_contract.times import utc_iso
from pht_operator.kube import ApiError, KubeClient, Obj

logger = logging.getLogger("pht_operator.events")

EVENTS = Event
COMPONENT = "pht-station-operator"


def build_event(body: Obj, kind: str, reason: str, message: str) -> Obj:
    meta = body["metadata"]
    now = utc_iso()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name'][:200]}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": kind,
        "reason": reason[:128],
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventPoster:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, body: Obj, kind: str, reason: str, message: str) -> None:
        event = build_event(body, kind, reason, message)
        task = asyncio.get_running_loop().create_task(self._post(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, event: Obj) -> None:
        try:
            await self._kube.create(EVENTS, event["metadata"]["namespace"], event)
        except ApiError as exc:
            logger.debug("event not posted: %s", exc.code)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
