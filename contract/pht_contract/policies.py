"""The StationPolicy custom resource: what a data steward allows at this station.

Defaults follow what the field uses (see docs/api.md): DataSHIELD's ``nfilter.tab = 3`` and
vantage6's minimum of 5 records motivate a minimum cell count of 5 and a minimum cohort of 10.
"""

from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from pht_contract.base import (
    ApiModel,
    Iri,
    LabelKey,
    LabelValue,
    Quantity,
    ShortText,
    Timestamp,
)
from pht_contract.constants import STATION_POLICY_NAME
from pht_contract.manifests import IDENTIFIER, Category
from pht_contract.reviewerkeys import (
    MAX_KEY_PEM_CHARS,
    ReviewerKey,
    ReviewerKeyError,
    load_public_key,
)
from pht_contract.times import parse_utc

ModelFormat = Literal["safetensors", "onnx", "npy", "json"]
SAFE_MODEL_FORMATS: tuple[ModelFormat, ...] = ("safetensors", "onnx", "npy", "json")


class ImagePolicy(ApiModel):
    allowed_registries: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=32
    )
    """Registries a Train's image may come from (host, or host/path prefix)."""
    allowed_images: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=list, max_length=64
    )
    """Glob patterns on the repository (no tag or digest), e.g. ``registry.example.org/pht/*``."""
    require_digest: bool = True
    """Refuse images not pinned by digest (always required when approval is)."""


class ResourceLimits(ApiModel):
    max_cpu: Quantity = "8"
    """Per-train CPU ceiling."""
    max_memory: Quantity = "32Gi"
    """Per-train memory ceiling."""
    max_ephemeral_storage: Quantity = "20Gi"
    """Per-train scratch-space ceiling."""
    max_gpus: int = Field(default=1, ge=0, le=16)
    """Per-train GPU ceiling."""
    allowed_gpu_models: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=16
    )
    """GPU models a Train may ask for (node label `nvidia.com/gpu.product`); empty: any."""
    max_concurrent_trains: int = Field(default=4, ge=1, le=1000)
    """Trains running at once; more wait (ConcurrencyLimitReached), they are not refused."""


class StandingApprovalLimits(ApiModel):
    max_runs: int = Field(default=20, ge=1, le=1000)
    """Most runs one standing approval may cover."""
    max_days: int = Field(default=90, ge=1, le=366)
    """Longest validity of a standing approval."""


class ApprovalPolicy(ApiModel):
    mode: Literal["None", "OneSteward", "TwoStewards"] = "OneSteward"
    """Approvals before a run: none, one steward, or two distinct stewards (not the requester)."""
    standing: StandingApprovalLimits = Field(default_factory=StandingApprovalLimits)
    """Caps on standing approvals (runs and days), whatever an approval says."""


class TimeoutPolicy(ApiModel):
    default_seconds: int = Field(default=3600, ge=1, le=604800)
    """Run deadline when the Train sets none."""
    max_seconds: int = Field(default=86400, ge=1, le=604800)
    """Longest run deadline a Train may ask for."""
    pending_seconds: int = Field(default=900, ge=1, le=86400)
    """How long a run may stay unschedulable before it fails ``Unschedulable``."""


class Toleration(ApiModel):
    key: LabelKey
    """Taint key the run tolerates."""
    operator: Literal["Exists", "Equal"] = "Exists"
    """`Exists` (any value) or `Equal` (the value below)."""
    value: LabelValue | None = None
    """Taint value, with `Equal`."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect tolerated; all effects when unset."""


def _default_tolerations() -> list[Toleration]:
    return [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]


class SchedulingPolicy(ApiModel):
    kueue_queue: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    """Kueue LocalQueue for runs (label kueue.x-k8s.io/queue-name)."""
    priority_class_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """PriorityClass of run pods."""
    gpu_node_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}, max_length=16
    )
    """Node labels a GPU run is placed by."""
    gpu_tolerations: list[Toleration] = Field(default_factory=_default_tolerations, max_length=16)
    """Tolerations of GPU runs (GPU nodes are usually tainted)."""
    data_store_pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"app.kubernetes.io/component": "station-api"}, max_length=16
    )
    """Labels of the data store's pods: runs prefer nodes where those run."""


class DataAccessPolicy(ApiModel):
    allowed_graphs: list[Iri] = Field(min_length=1, max_length=64)
    """Named graphs Trains may read; a Train's graphs must be among them."""
    query_mode: Literal["ApprovedQueriesOnly", "AnyReadOnlyQuery"] = "ApprovedQueriesOnly"
    """Only the Train's approved queries (by normalised hash), or any read-only query."""
    allow_construct_describe: bool = False
    """Allow CONSTRUCT and DESCRIBE besides SELECT and ASK."""
    query_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    """A query running longer is stopped."""
    row_cap: int = Field(default=10000, ge=1, le=10_000_000)
    """More result rows answer 4xx RowCapExceeded (never silent truncation)."""
    queries_per_minute: int = Field(default=60, ge=1, le=100_000)
    """Per-token rate limit."""
    max_query_bytes: int = Field(default=65536, ge=256, le=1_048_576)
    """Request size cap for a query."""
    min_distinct_patients: int | None = Field(default=None, ge=1, le=100_000)
    """Optional input-side guard: results binding fewer distinct patients are refused."""


#: An image digest as the operator pins it (``image@sha256:…``).
ImageDigest = Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$", max_length=71)]
#: The longest a review of an image counts for (a leap year).
MAX_REVIEW_DAYS: Final = 366


class ImageReview(ApiModel):
    """A steward's recorded review of one train image: who reviewed which digest, when, why,
    and until when. Admission binds ``reviewer`` to the user who adds or changes the entry."""

    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (
            "timestamp(self.expiresAt) > timestamp(self.reviewedAt)",
            "expiresAt must be after reviewedAt",
        ),
        (
            f"timestamp(self.expiresAt) <= timestamp(self.reviewedAt) + "
            f"duration('{MAX_REVIEW_DAYS * 24}h')",
            f"a review counts for at most {MAX_REVIEW_DAYS} days: set expiresAt at most "
            f"{MAX_REVIEW_DAYS} days after reviewedAt",
        ),
        ("has(self.notes) || has(self.link)", "say what was reviewed: set notes or link"),
    )

    digest: ImageDigest
    """The reviewed image's ``sha256:`` digest (a tag can be moved to other code)."""
    reviewer: Annotated[str, Field(min_length=1, max_length=253)]
    """The steward's Kubernetes username; admission binds it to request.userInfo.username."""
    reviewed_at: Timestamp
    """When the review was done (RFC 3339, UTC); a review dated in the future counts for
    nothing."""
    expires_at: Timestamp
    """When the review stops counting (after ``reviewedAt``, at most 366 days later); results
    of the image are then held for a steward again."""
    notes: str | None = Field(default=None, min_length=1, max_length=2048)
    """What was reviewed and the conclusion."""
    link: Iri | None = None
    """Where the review is written down (a ticket, a pull request, a report)."""

    @model_validator(mode="after")
    def _dated_and_explained(self) -> "ImageReview":
        reviewed, expires = parse_utc(self.reviewed_at), parse_utc(self.expires_at)
        if reviewed is None or expires is None:
            raise ValueError("reviewedAt and expiresAt must be RFC 3339 timestamps")
        if expires <= reviewed:
            raise ValueError("expiresAt must be after reviewedAt")
        if expires - reviewed > timedelta(days=MAX_REVIEW_DAYS):
            raise ValueError(
                f"a review counts for at most {MAX_REVIEW_DAYS} days: set expiresAt at most "
                f"{MAX_REVIEW_DAYS} days after reviewedAt"
            )
        if self.notes is None and self.link is None:
            raise ValueError("say what was reviewed: set notes or link")
        return self

    def counts_at(self, moment: datetime) -> bool:
        """Whether the review counts at ``moment``: reviewed by then, and not yet expired."""
        reviewed, expires = parse_utc(self.reviewed_at), parse_utc(self.expires_at)
        return reviewed is not None and expires is not None and reviewed <= moment < expires


#: The most reviewer keys one station trusts.
MAX_TRUSTED_REVIEWERS: Final = 16


class TrustedReviewer(ApiModel):
    """A reviewer (a consortium's review board, say) whose signed image reviews this station
    accepts as if a steward had recorded them in ``reviewedImages``."""

    # A private key pasted here by mistake must not be repeated in an error message.
    model_config = ConfigDict(hide_input_in_errors=True)

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """Who holds the key, as stewards know them (shown with every review it signed)."""
    added_by: Annotated[str, Field(min_length=1, max_length=253)]
    """The steward who added the key (their Kubernetes username); the chart's admission policy
    binds a key added or changed to request.userInfo.username, and a release the key let out
    names them."""
    public_key: str = Field(min_length=1, max_length=MAX_KEY_PEM_CHARS)
    """The reviewer's public key in PEM (``-----BEGIN PUBLIC KEY-----``): ECDSA P-256 or
    Ed25519. Its key id is the SHA-256 of the key's DER bytes."""
    expires_at: Timestamp | None = None
    """When the station stops trusting the key (RFC 3339, UTC); reviews it signed stop
    counting then, whatever their own expiry."""

    @model_validator(mode="after")
    def _accepted_key(self) -> "TrustedReviewer":
        try:
            load_public_key(self.public_key)
        except ReviewerKeyError as exc:
            raise ValueError(f"publicKey: {exc}") from None
        if self.expires_at is not None and parse_utc(self.expires_at) is None:
            raise ValueError("expiresAt must be an RFC 3339 timestamp")
        return self

    def key(self) -> ReviewerKey:
        """The public key (validated when the entry was)."""
        return load_public_key(self.public_key)

    def counts_at(self, moment: datetime) -> bool:
        """Whether the station still trusts the key at ``moment``."""
        if self.expires_at is None:
            return True
        expires = parse_utc(self.expires_at)
        return expires is not None and moment < expires


class ReleasableVariable(ApiModel):
    """A variable whose values may appear as table labels, and the values it may take.

    Labels are how row-level data would leave a station (a patient identifier as a group
    label), so only variables a steward listed, with their value domain, may label a row.
    """

    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (
            "has(self.minimum) == has(self.maximum)",
            "a numeric range needs both minimum and maximum",
        ),
        (
            "!has(self.minimum) || !has(self.maximum) || "
            "double(self.minimum) <= double(self.maximum)",
            "minimum must not exceed maximum",
        ),
    )

    name: str = Field(pattern=IDENTIFIER, max_length=63)
    """The Group column name the variable appears under in a result table."""
    values: list[Category] = Field(default_factory=list, max_length=256)
    """The labels it may take (categories: a stage, a histology, ``missing``, ``All``)."""
    minimum: float | None = Field(default=None, allow_inf_nan=False)
    """With ``maximum``: numeric labels in this closed range are allowed (time points)."""
    maximum: float | None = Field(default=None, allow_inf_nan=False)
    """With ``minimum``: numeric labels in this closed range are allowed (time points)."""

    @model_validator(mode="after")
    def _range_is_closed(self) -> "ReleasableVariable":
        if (self.minimum is None) != (self.maximum is None):
            raise ValueError("a numeric range needs both minimum and maximum")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum must not exceed maximum")
        return self


class AggregateRules(ApiModel):
    """The rules for aggregates the station computes itself (``spec.aggregates`` of a Train).

    The frequency threshold is ``minCellCount``: every released cell stands for at least that
    many patients, and a survival table's drop in numbers at risk between released points too.
    """

    zeros_are_disclosive: bool = True
    """Suppress cells that count no patient (a zero says every patient of a group lacks it)."""
    dominance_n: int = Field(default=2, ge=1, le=10)
    """n of the n-k dominance rule: when the n largest contributions to a summed statistic…"""
    dominance_k: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    """…make up this share of the cell's total or more, the cell is suppressed."""
    p_ratio: float = Field(default=0.1, ge=0, le=1, allow_inf_nan=False)
    """p-ratio rule: the total less the two largest contributions must be at least this share
    of the largest, or the second largest contributor could estimate the largest closely."""
    min_residual_dof: int = Field(default=10, ge=1, le=100_000)
    """A model round needs at least this many patients more than it has terms."""
    min_events_per_parameter: int = Field(default=10, ge=1, le=1000)
    """A Cox model round needs at least this many deaths per term."""
    max_abs_coefficient: float = Field(default=50.0, gt=0, le=1000, allow_inf_nan=False)
    """Ceiling on every coefficient a model round may be computed at, whatever a Train asks."""


class DisclosurePolicy(ApiModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    min_cohort: int = Field(default=10, ge=1, le=100_000)
    """Fewest patients behind any released table or statistic."""
    min_cell_count: int = Field(default=5, ge=1, le=100_000)
    """Smallest non-zero count a released table cell may hold."""
    small_cell_action: Literal["Suppress", "Block"] = "Suppress"
    """What the gate does with a small cell: suppress it, or block the result."""
    forbid_row_level: bool = True
    """Refuse RowLevel tables."""
    allowed_model_formats: list[ModelFormat] = Field(
        default_factory=lambda: list(SAFE_MODEL_FORMATS), max_length=4
    )
    """Model file formats a result may contain (never pickle)."""
    manual_release_for_models: bool = True
    """Hold model files for a steward's manual release."""
    manual_release_for_all: bool = False
    """Hold every result for a steward, even of images reviewed for automatic release."""
    max_result_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    """Largest result upload."""
    differencing_threshold: int = Field(default=5, ge=0, le=100_000)
    """A release whose cohort differs from an earlier release by fewer patients is held."""
    reviewed_images: list[ImageReview] = Field(default_factory=list, max_length=64)
    """Train images a steward reviewed and trusts, each with its reviewer, date, notes or link
    and expiry: results of a reviewed digest that pass every check are released without a
    steward until the review expires. Every other result is held for a steward."""
    trusted_reviewers: list[TrustedReviewer] = Field(
        default_factory=list, max_length=MAX_TRUSTED_REVIEWERS
    )
    """Reviewers whose signed image reviews count like ``reviewedImages``: a Train that
    carries a review of its image digest (``spec.signedReview``) signed by one of these keys
    while key and review are valid is judged as a reviewed image."""

    releasable_variables: list[ReleasableVariable] = Field(default_factory=list, max_length=64)
    """The only variables (and values) that may label table rows; other labels block."""
    significant_digits: int = Field(default=6, ge=1, le=17)
    """Derived numbers (statistics) are released rounded to this many significant digits."""
    max_cells_per_result: int = Field(default=10_000, ge=1, le=1_000_000)
    """Most non-empty table cells plus statistics in one result, all tables together."""
    max_labelled_rows_per_result: int = Field(default=1_000, ge=1, le=100_000)
    """Most labelled table rows in one result, all tables together."""
    aggregates: AggregateRules = Field(default_factory=AggregateRules)
    """Rules for the aggregates the station computes itself (dominance, p-ratio, models)."""

    @model_validator(mode="after")
    def _reviewers_distinct(self) -> "DisclosurePolicy":
        names = [r.name for r in self.trusted_reviewers]
        if len(set(names)) != len(names):
            raise ValueError("trustedReviewers: each reviewer's name must be unique")
        keys = [r.key().key_id for r in self.trusted_reviewers]
        if len(set(keys)) != len(keys):
            raise ValueError("trustedReviewers: each key may be listed once")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_unrecorded_trust(cls, data: object) -> object:
        if isinstance(data, dict) and (
            "autoReleaseImageDigests" in data or "auto_release_image_digests" in data
        ):
            raise ValueError(
                "autoReleaseImageDigests was replaced by reviewedImages: record each trusted "
                "image as {digest, reviewer, reviewedAt, expiresAt, notes or link}"
            )
        return data


class StationPolicySpec(ApiModel):
    """What the data steward allows: images, resources, approvals, data access, disclosure."""

    # A private key pasted as a reviewer's public key must not be repeated in an error.
    model_config = ConfigDict(hide_input_in_errors=True)

    images: ImagePolicy = Field(default_factory=ImagePolicy)
    """Which images may run."""
    limits: ResourceLimits = Field(default_factory=ResourceLimits)
    """Resource ceilings per Train, and how many run at once."""
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    """Who must approve a Train before it runs."""
    timeouts: TimeoutPolicy = Field(default_factory=TimeoutPolicy)
    """Run deadlines and how long a run may stay unschedulable."""
    scheduling: SchedulingPolicy = Field(default_factory=SchedulingPolicy)
    """Where runs are placed (Kueue queue, priority, GPU nodes)."""
    data_access: DataAccessPolicy
    """What runs may query, and how much."""
    disclosure: DisclosurePolicy = Field(default_factory=DisclosurePolicy)
    """What the disclosure gate lets out of the station."""
    organisations: list[
        Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    ] = Field(min_length=1, max_length=64)
    """Requester organisations this station knows; also the only metric label values."""
    result_retention_days: int = Field(default=30, ge=1, le=3650)
    """Days uploads and released results are kept."""
    display_name: ShortText | None = None
    """Human-readable name of the station."""


class StationPolicy(ApiModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (
            f"self.metadata.name == '{STATION_POLICY_NAME}'",
            f"a station namespace holds one StationPolicy, named '{STATION_POLICY_NAME}'",
        ),
    )

    api_version: str = Field(max_length=64)
    kind: Literal["StationPolicy"]
    metadata: dict[str, object]
    spec: StationPolicySpec
