"""Condition types, reasons and the one-word summary of a Train (Kueue/metav1 style)."""

from enum import StrEnum
from typing import Literal

from pydantic import Field

from pht_contract.base import CAMEL_REASON, ApiModel, Timestamp


class ConditionType(StrEnum):
    ADMITTED = "Admitted"
    APPROVED = "Approved"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RESULT_RELEASED = "ResultReleased"


class Reason(StrEnum):
    """Every CamelCase reason a Train condition may carry."""

    # admission
    ADMITTED = "Admitted"
    NO_STATION_POLICY = "NoStationPolicy"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    DIGEST_REQUIRED = "DigestRequired"
    EXCEEDS_CPU_LIMIT = "ExceedsCpuLimit"
    EXCEEDS_MEMORY_LIMIT = "ExceedsMemoryLimit"
    EXCEEDS_EPHEMERAL_STORAGE_LIMIT = "ExceedsEphemeralStorageLimit"
    EXCEEDS_GPU_LIMIT = "ExceedsGpuLimit"
    INVALID_RESOURCES = "InvalidResources"
    GPU_MODEL_NOT_ALLOWED = "GpuModelNotAllowed"
    TIMEOUT_TOO_LONG = "TimeoutTooLong"
    UNKNOWN_ORGANISATION = "UnknownOrganisation"
    GRAPH_NOT_ALLOWED = "GraphNotAllowed"
    QUERY_NOT_ALLOWED = "QueryNotAllowed"
    INVALID_QUERY = "InvalidQuery"
    QUERIES_REQUIRED = "QueriesRequired"
    INVALID_PARAMETERS = "InvalidParameters"
    AGGREGATE_NOT_ALLOWED = "AggregateNotAllowed"
    INVALID_SPEC = "InvalidSpec"
    INVALID_SIGNED_REVIEW = "InvalidSignedReview"
    CONCURRENCY_LIMIT_REACHED = "ConcurrencyLimitReached"
    # approval
    APPROVAL_NOT_REQUIRED = "ApprovalNotRequired"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    STANDING_APPROVAL = "StandingApproval"
    REJECTED = "Rejected"
    PARAMETERS_OUTSIDE_APPROVAL = "ParametersOutsideApproval"
    SPEC_CHANGED_AFTER_ADMISSION = "SpecChangedAfterAdmission"
    # run
    JOB_CREATED = "JobCreated"
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    UNSCHEDULABLE = "Unschedulable"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    RUN_LOST = "RunLost"
    RUN_COMPLETED = "RunCompleted"
    CANCELLED = "Cancelled"
    REGISTRATION_FAILED = "RegistrationFailed"
    SPEC_CHANGED_AFTER_APPROVAL = "SpecChangedAfterApproval"
    # result
    AWAITING_RESULT = "AwaitingResult"
    AWAITING_RELEASE = "AwaitingRelease"
    RESULT_RELEASED = "ResultReleased"
    DISCLOSURE_BLOCKED = "DisclosureBlocked"
    NO_OUTPUT = "NoOutput"


class Summary(StrEnum):
    """One word for ``kubectl get trains``."""

    PENDING = "Pending"
    REJECTED = "Rejected"
    WAITING = "Waiting"  # concurrency limit
    AWAITING_APPROVAL = "AwaitingApproval"
    QUEUED = "Queued"
    RUNNING = "Running"
    AWAITING_RELEASE = "AwaitingRelease"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


TERMINAL_SUMMARIES = frozenset({Summary.REJECTED, Summary.SUCCEEDED, Summary.FAILED})


class Condition(ApiModel):
    """Shaped like ``metav1.Condition``."""

    type: ConditionType
    """What the condition is about."""
    status: Literal["True", "False", "Unknown"]
    """`True`, `False`, or `Unknown` while not decided."""
    reason: str = Field(pattern=CAMEL_REASON, min_length=1, max_length=1024)
    """Why, in one CamelCase word (one of `pht_contract.conditions.Reason`)."""
    message: str = Field(default="", max_length=32768)
    """Why, for humans."""
    last_transition_time: Timestamp
    """When `status` last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The `metadata.generation` the condition was set for."""
