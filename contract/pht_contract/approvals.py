"""TrainApproval: a steward's decision on one Train (bound to its spec hash) or a standing
approval (image digest + query hashes, a number of runs, an expiry) for federated rounds.

Who the approver is gets bound to ``request.userInfo`` by a ValidatingAdmissionPolicy in the
chart; the operator still refuses self-approval and duplicate approvers.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from pht_contract.base import ApiModel, DnsLabel, Sha256Hex, Timestamp


class TrainRef(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=253)]
    spec_hash: Sha256Hex


class StandingScope(ApiModel):
    image_digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$", max_length=71)
    query_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=32)
    max_runs: int = Field(ge=1, le=1000)
    expires_at: Timestamp


class TrainApprovalSpec(ApiModel):
    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        ("has(self.train) != has(self.standing)", "set exactly one of train or standing"),
        ("self == oldSelf", "an approval cannot be changed; create a new one"),
    )

    train: TrainRef | None = None
    standing: StandingScope | None = None
    decision: Literal["Approve", "Reject"] = "Approve"
    #: The steward's Kubernetes username; admission binds it to request.userInfo.username.
    approver: Annotated[str, Field(min_length=1, max_length=253)]
    comment: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _exactly_one_scope(self) -> "TrainApprovalSpec":
        if (self.train is None) == (self.standing is None):
            raise ValueError("set exactly one of train or standing")
        return self


class TrainApprovalStatus(ApiModel):
    runs_used: int = Field(default=0, ge=0)
    consumed_by: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=1000
    )


class TrainApproval(ApiModel):
    api_version: str = Field(max_length=64)
    kind: Literal["TrainApproval"]
    metadata: dict[str, object]
    spec: TrainApprovalSpec
    status: TrainApprovalStatus | None = None


__all__ = ["DnsLabel", "StandingScope", "TrainApproval", "TrainApprovalSpec", "TrainRef"]
