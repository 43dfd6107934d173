"""The StationPolicy custom resource: what a data steward allows at this station.

Defaults follow what the field uses (see docs/api.md): DataSHIELD's ``nfilter.tab = 3`` and
vantage6's minimum of 5 records motivate a minimum cell count of 5 and a minimum cohort of 10.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from pht_contract.base import ApiModel, Iri, LabelKey, LabelValue, Quantity, ShortText
from pht_contract.constants import STATION_POLICY_NAME

ModelFormat = Literal["safetensors", "onnx", "npy", "json"]
SAFE_MODEL_FORMATS: tuple[ModelFormat, ...] = ("safetensors", "onnx", "npy", "json")


class ImagePolicy(ApiModel):
    allowed_registries: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list, max_length=32
    )
    #: Glob patterns on the repository (no tag or digest), e.g. ``registry.example.org/pht/*``.
    allowed_images: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=list, max_length=64
    )
    require_digest: bool = True


class ResourceLimits(ApiModel):
    max_cpu: Quantity = "8"
    max_memory: Quantity = "32Gi"
    max_ephemeral_storage: Quantity = "20Gi"
    max_gpus: int = Field(default=1, ge=0, le=16)
    allowed_gpu_models: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=16
    )
    max_concurrent_trains: int = Field(default=4, ge=1, le=1000)


class StandingApprovalLimits(ApiModel):
    max_runs: int = Field(default=20, ge=1, le=1000)
    max_days: int = Field(default=90, ge=1, le=366)


class ApprovalPolicy(ApiModel):
    mode: Literal["None", "OneSteward", "TwoStewards"] = "OneSteward"
    standing: StandingApprovalLimits = Field(default_factory=StandingApprovalLimits)


class TimeoutPolicy(ApiModel):
    default_seconds: int = Field(default=3600, ge=1, le=604800)
    max_seconds: int = Field(default=86400, ge=1, le=604800)
    #: How long a run may stay unschedulable before it fails ``Unschedulable``.
    pending_seconds: int = Field(default=900, ge=1, le=86400)


class Toleration(ApiModel):
    key: LabelKey
    operator: Literal["Exists", "Equal"] = "Exists"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


def _default_tolerations() -> list[Toleration]:
    return [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]


class SchedulingPolicy(ApiModel):
    kueue_queue: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    priority_class_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    gpu_node_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}, max_length=16
    )
    gpu_tolerations: list[Toleration] = Field(default_factory=_default_tolerations, max_length=16)
    #: Labels of the data store's pods: runs prefer nodes where those run.
    data_store_pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=lambda: {"app.kubernetes.io/component": "station-api"}, max_length=16
    )


class DataAccessPolicy(ApiModel):
    allowed_graphs: list[Iri] = Field(min_length=1, max_length=64)
    query_mode: Literal["ApprovedQueriesOnly", "AnyReadOnlyQuery"] = "ApprovedQueriesOnly"
    allow_construct_describe: bool = False
    query_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    row_cap: int = Field(default=10000, ge=1, le=10_000_000)
    queries_per_minute: int = Field(default=60, ge=1, le=100_000)
    max_query_bytes: int = Field(default=65536, ge=256, le=1_048_576)
    #: Optional input-side guard: results binding fewer distinct patients are refused.
    min_distinct_patients: int | None = Field(default=None, ge=1, le=100_000)


class DisclosurePolicy(ApiModel):
    min_cohort: int = Field(default=10, ge=1, le=100_000)
    min_cell_count: int = Field(default=5, ge=1, le=100_000)
    small_cell_action: Literal["Suppress", "Block"] = "Suppress"
    forbid_row_level: bool = True
    allowed_model_formats: list[ModelFormat] = Field(
        default_factory=lambda: list(SAFE_MODEL_FORMATS), max_length=4
    )
    manual_release_for_models: bool = True
    manual_release_for_all: bool = False
    max_result_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    #: A release whose cohort differs from an earlier release by fewer patients is held.
    differencing_threshold: int = Field(default=5, ge=0, le=100_000)


class StationPolicySpec(ApiModel):
    images: ImagePolicy = Field(default_factory=ImagePolicy)
    limits: ResourceLimits = Field(default_factory=ResourceLimits)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    timeouts: TimeoutPolicy = Field(default_factory=TimeoutPolicy)
    scheduling: SchedulingPolicy = Field(default_factory=SchedulingPolicy)
    data_access: DataAccessPolicy
    disclosure: DisclosurePolicy = Field(default_factory=DisclosurePolicy)
    #: Requester organisations this station knows; also the only metric label values.
    organisations: list[
        Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    ] = Field(min_length=1, max_length=64)
    result_retention_days: int = Field(default=30, ge=1, le=3650)
    display_name: ShortText | None = None


class StationPolicy(ApiModel):
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
