"""The JSON bodies the station API answers with, so the OpenAPI document describes each one.

Bodies that the contract already defines (registration and upload receipts, the train state,
the result manifest) come from :mod:`pht_contract`; the ones only this API sends are here.
Refusals share :class:`ErrorBody` (routes list them with :func:`refusal`).
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from pht_contract.aggregates import OutgoingResult
from pht_contract.base import ApiModel
from pht_contract.wire import DetailValue


class ErrorBody(BaseModel):
    """Every refusal: a CamelCase ``reason`` to branch on and a ``message`` for people."""

    model_config = ConfigDict(extra="allow")

    reason: str
    message: str


def refusal(description: str) -> dict[str, Any]:
    """A refusal in a route's OpenAPI ``responses``: its body is an :class:`ErrorBody`."""
    return {"model": ErrorBody, "description": description}


class HealthStatus(ApiModel):
    status: str


class LoadReceipt(ApiModel):
    """What a data load added: the named graph and how many quads were read."""

    graph: str
    quads: int


class EventReceipt(ApiModel):
    """An operator event in the provenance chain (the same event id answers the same hash)."""

    event_id: str
    record_hash: str


class ResultOverview(ApiModel):
    """What a steward sees of a result in a list: names, state, rule and findings, no content."""

    uid: str
    namespace: str
    name: str
    release: str
    rule: str | None
    findings: list[str]
    attempts: int
    decided_at: str | None
    decided_by: str | None
    released_at: str | None
    purged_at: str | None


class HeldResults(ApiModel):
    items: list[ResultOverview]


class ResultView(ResultOverview):
    """A result for its steward: the overview and the manifest as it would leave, if any."""

    outgoing: OutgoingResult | None


class StoryRecord(ApiModel):
    """One provenance record, exactly as it was hashed into the chain."""

    seq: int
    kind: str
    train_uid: str | None
    actor: str
    at: str
    event_id: str
    details: dict[str, DetailValue]
    previous_hash: str


class TrainStory(ApiModel):
    uid: str
    records: list[StoryRecord]
