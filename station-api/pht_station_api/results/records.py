"""What the result archive remembers about one train's result (never the result's content).

Content (each attempt's bytes, the outgoing manifest) lives in separate files next to this
record, so a purge can remove content while the decision and its rule stay answerable.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from pht_contract.policies import DisclosurePolicy
from pht_contract.trains import ReleaseState
from pht_station_api.disclosure.ledgers import reader_scopes


@dataclass(frozen=True)
class TrainContext:
    """What the gate needs to know about the train, taken from its registration."""

    uid: str
    namespace: str
    name: str
    #: Who asked, for people to read (the recorded identity, else the typed name).
    requester: str
    organisation: str
    disclosure: DisclosurePolicy
    retention_days: int
    #: Keyed fingerprints of the patients the train's audited queries bound.
    patients: frozenset[str] = field(default_factory=frozenset)
    #: The admission-recorded identity alone: a typed name must not file a result under
    #: somebody else's scope (it could hold back that person's later results).
    requested_by: str | None = None
    #: The image as admitted (pinned by digest): decides whether a result may skip a steward.
    image: str | None = None
    #: The Train's signed review of its image (a DSSE envelope), if it carries one.
    signed_review: str | None = None

    @property
    def ledger_scopes(self) -> tuple[str, ...]:
        """Where the ledger's cohort-size fallback looks (patient sets: station-wide)."""
        return reader_scopes(self.namespace, self.requested_by)


@dataclass
class Attempt:
    attempt: int
    digest: str
    size_bytes: int
    uploaded_at: str


@dataclass
class ResultRecord:
    uid: str
    namespace: str
    name: str
    ledger_scopes: list[str]
    retention_days: int
    disclosure: dict[str, Any]
    created_at: str
    attempts: list[Attempt] = field(default_factory=list)
    completed: bool = False
    completion_reason: str | None = None
    release: ReleaseState = ReleaseState.PENDING
    rule: str | None = None
    findings: list[str] = field(default_factory=list)
    cohorts: list[int] = field(default_factory=list)
    decided_at: str | None = None
    decided_by: str | None = None
    released_digest: str | None = None
    released_size: int | None = None
    released_at: str | None = None
    purged_at: str | None = None
    image: str | None = None
    signed_review: str | None = None
    #: The admission-recorded requester: a steward may not release their own Train's result.
    requested_by: str | None = None

    @classmethod
    def new(cls, train: TrainContext, now: str) -> "ResultRecord":
        return cls(
            uid=train.uid,
            namespace=train.namespace,
            name=train.name,
            ledger_scopes=list(train.ledger_scopes),
            retention_days=train.retention_days,
            disclosure=train.disclosure.wire(),
            created_at=now,
            image=train.image,
            signed_review=train.signed_review,
            requested_by=train.requested_by,
        )

    def policy(self) -> DisclosurePolicy:
        # Policies archived before reviews were recorded listed bare digests; such trust names
        # no reviewer and no expiry, so it no longer counts (the result waits for a steward).
        disclosure = {k: v for k, v in self.disclosure.items() if k != "autoReleaseImageDigests"}
        return DisclosurePolicy.model_validate(disclosure)

    def to_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["release"] = self.release.value
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> "ResultRecord":
        data = dict(value)
        # Records from before reader scopes named one ``organisation/requester`` key; the
        # namespace is the scope every such result was readable in.
        if "ledger_scopes" not in data:
            data.pop("ledger_key", None)
            data["ledger_scopes"] = list(reader_scopes(str(data["namespace"]), None))
        data["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        data["release"] = ReleaseState(data.get("release", ReleaseState.PENDING.value))
        return cls(**data)
