"""The wire contract between the operator, running trains and the station API.

Paths are constants here so neither side spells them twice. The internal listener serves
everything below ``/internal/v1``; it is never exposed by an Ingress.

* The **operator** authenticates with its own credential (``Authorization: Bearer``) and
  registers a train (idempotent ``PUT``, keyed by the Train's uid), reads its state, reports the
  run's completion, records provenance, and deregisters (token revoked at once).
* A **running train** authenticates with its token (the API stores only ``token_hash``) and may
  query, report progress and upload its result manifest.
* The **station API owns** progress, uploads, the disclosure decision and manual release; the
  operator mirrors them from :class:`TrainState` into the Train's status.
"""

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field

from pht_contract.aggregates import MAX_AGGREGATES, AggregateSpec
from pht_contract.base import ApiModel, DnsLabel, Sha256Hex, Timestamp
from pht_contract.policies import (
    MAX_TRUSTED_REVIEWERS,
    DisclosurePolicy,
    ImageReview,
    StationPolicySpec,
    TrustedReviewer,
)
from pht_contract.trains import (
    MAX_SIGNED_REVIEW_BYTES,
    Progress,
    ProgressStage,
    ReleaseState,
    ResultSummary,
)

INTERNAL_PREFIX: Final = "/internal/v1"
# operator → station API
TRAIN_REGISTRATION_PATH: Final = INTERNAL_PREFIX + "/trains/{uid}"  # PUT, DELETE
TRAIN_STATE_PATH: Final = INTERNAL_PREFIX + "/trains/{uid}/state"  # GET
TRAIN_COMPLETION_PATH: Final = INTERNAL_PREFIX + "/trains/{uid}/completion"  # PUT
PROVENANCE_PATH: Final = INTERNAL_PREFIX + "/provenance"  # POST
# running train → station API
SPARQL_PATH: Final = INTERNAL_PREFIX + "/sparql"  # GET, POST
PROGRESS_PATH: Final = INTERNAL_PREFIX + "/progress"  # POST
RESULT_PATH: Final = INTERNAL_PREFIX + "/result"  # PUT (a ResultManifest)
# both listeners
HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"
METRICS_PATH: Final = "/metrics"


class ApprovedQuery(ApiModel):
    """A query text as approved: the gateway executes this text, never the train's copy."""

    name: DnsLabel
    sparql: str = Field(min_length=1, max_length=16384)
    hash: Sha256Hex


class TrainRegistration(ApiModel):
    """What the operator tells the station API about an admitted, approved train."""

    uid: Annotated[str, Field(min_length=1, max_length=64)]
    namespace: DnsLabel
    name: Annotated[str, Field(min_length=1, max_length=253)]
    spec_hash: Sha256Hex
    image: Annotated[str, Field(max_length=512)]
    token_hash: Sha256Hex
    approved_query_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=32)
    approved_queries: list[ApprovedQuery] = Field(default_factory=list, max_length=32)
    """The Train's named queries with the texts the steward approved; a train names one and
    the gateway runs the stored text."""
    allowed_graphs: list[Annotated[str, Field(max_length=512)]] = Field(max_length=64)
    policy: StationPolicySpec
    policy_hash: Sha256Hex
    requester_name: Annotated[str, Field(max_length=256)]
    requester_organisation: DnsLabel
    expires_at: Timestamp
    image_runs_as_built: bool = False
    """True when the run starts the image's own entrypoint and command (no ``command`` or
    ``args`` override) and mounts no input artifact: only then is a steward's review of the
    image digest (``reviewedImages``) a review of the code that runs."""
    signed_review: Annotated[str, Field(max_length=MAX_SIGNED_REVIEW_BYTES)] | None = None
    """The Train's ``spec.signedReview``: the gate verifies it against ``policy``'s trusted
    reviewer keys (it counts, like a reviewed digest, only when ``imageRunsAsBuilt``)."""
    requested_by: Annotated[str, Field(max_length=253)] | None = None
    """The Kubernetes user who created the Train (recorded by the admission policy); the
    differencing ledger is kept per this identity, which the requester cannot rename."""
    aggregates: list[AggregateSpec] = Field(default_factory=list, max_length=MAX_AGGREGATES)
    """The aggregates the station computes itself when the run ends (``spec.aggregates``)."""
    parameters: Annotated[str, Field(max_length=16 * 1024)] | None = None
    """The Train's ``spec.parameters`` (a model round's coefficients come from them)."""
    provenance: list["ProvenanceEvent"] = Field(default_factory=list, max_length=4)
    """The operator's records of the steps that led to this registration (its admission and
    approval of this Train): the station writes them to the chain before the registration
    record, each once per ``eventId``, instead of the operator posting each on its own."""


class RegistrationReceipt(ApiModel):
    uid: str
    created: bool
    registered_at: Timestamp


class ProgressReport(ApiModel):
    """Sent by a running train: a number and an enumerated stage, never free text."""

    percent: int = Field(ge=0, le=100)
    stage: ProgressStage


class UploadReceipt(ApiModel):
    uid: str
    attempt: int = Field(ge=1)
    digest: str
    size_bytes: int = Field(ge=0)


class ReviewTrust(ApiModel):
    """The image reviews and reviewer keys of the station's policy as it is when a run ends:
    one a steward withdrew or changed while the run went on no longer lets its result skip
    them, though the run was registered under it."""

    reviewed_images: list[ImageReview] = Field(default_factory=list, max_length=64)
    trusted_reviewers: list[TrustedReviewer] = Field(
        default_factory=list, max_length=MAX_TRUSTED_REVIEWERS
    )

    @classmethod
    def of(cls, policy: DisclosurePolicy) -> "ReviewTrust":
        return cls(
            reviewed_images=list(policy.reviewed_images),
            trusted_reviewers=list(policy.trusted_reviewers),
        )


class RunCompletion(ApiModel):
    """Sent by the operator when the run's Job reached a final state."""

    job_succeeded: bool
    reason: Annotated[str, Field(max_length=64)]
    job_uid: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The run's Job; with it the station records the run (Job, creation time, attempts,
    outcome) in the chain as part of this call."""
    job_created_at: Timestamp | None = None
    attempts: int | None = Field(default=None, ge=0, le=1000)
    trust_now: ReviewTrust | None = None
    """The policy's reviews and reviewer keys at the run's end: a review or key counts only if
    it is, unchanged, in both these and the policy the run was registered with."""


class TrainState(ApiModel):
    """What the operator mirrors into the Train status."""

    uid: str
    registered: bool
    progress: Progress | None = None
    uploads: int = Field(default=0, ge=0)
    release: ReleaseState = ReleaseState.PENDING
    #: The disclosure rule that held or blocked the result (never a cell value).
    rule: Annotated[str, Field(max_length=64)] | None = None
    result: ResultSummary | None = None


class ProvenanceKind(StrEnum):
    ADMISSION = "admission"
    APPROVAL = "approval"
    REGISTRATION = "registration"
    QUERY = "query"
    RUN = "run"
    UPLOAD = "upload"
    RELEASE = "release"
    POLICY_CHANGE = "policy-change"
    DEREGISTRATION = "deregistration"


DetailValue = str | int | float | bool | None


class ProvenanceEvent(ApiModel):
    """A record the operator contributes to the chain; ``event_id`` makes it idempotent."""

    event_id: Annotated[str, Field(min_length=1, max_length=128)]
    kind: ProvenanceKind
    train_uid: Annotated[str, Field(max_length=64)] | None = None
    namespace: DnsLabel | None = None
    name: Annotated[str, Field(max_length=253)] | None = None
    actor: Annotated[str, Field(max_length=253)]
    at: Timestamp
    details: dict[Annotated[str, Field(max_length=64)], DetailValue] = Field(
        default_factory=dict, max_length=32
    )


TrainRegistration.model_rebuild()


class ReleaseDecision(ApiModel):
    """A steward's manual decision on a held result (external listener)."""

    decision: Literal["Release", "Block"]
    reason: Annotated[str, Field(min_length=1, max_length=1024)]


__all__ = [
    "Progress",
    "ProgressReport",
    "ProgressStage",
    "ProvenanceEvent",
    "ReleaseDecision",
    "ReleaseState",
    "RunCompletion",
    "TrainRegistration",
    "TrainState",
    "UploadReceipt",
]
