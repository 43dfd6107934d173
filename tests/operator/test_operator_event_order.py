"""The Events about one Train reach the API server in the order the operator raised them."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pht_contract.objects import Obj
from pht_operator.events import EventPoster
from pht_operator.kube import Resource


class SlowFirstApi:
    """Answers the first create late, the others at once; records the order of arrival."""

    def __init__(self) -> None:
        self.arrived: list[tuple[str, str]] = []
        self.calls = 0

    async def create(self, res: Resource, namespace: str, obj: Obj) -> Obj:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(0.2)
        self.arrived.append((obj["regarding"]["name"], obj["reason"]))
        return obj


def train(name: str, uid: str) -> Obj:
    return {
        "apiVersion": "pht.example/v1",
        "kind": "Train",
        "metadata": {"name": name, "namespace": "requests", "uid": uid},
    }


async def test_events_of_one_train_arrive_in_order_and_others_do_not_wait() -> None:
    api = SlowFirstApi()
    poster = EventPoster(cast(Any, api))
    first, other = train("a", "uid-a"), train("b", "uid-b")
    poster(first, "Normal", "JobCreated", "run created", "CreateRun")
    poster(first, "Normal", "Running", "the run started", "FollowRun")
    poster(other, "Normal", "Admitted", "admitted", "Admit")
    await poster.drain()
    assert api.arrived == [("b", "Admitted"), ("a", "JobCreated"), ("a", "Running")]
    assert not poster._last  # nothing kept once posted
