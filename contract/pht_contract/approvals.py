"""TrainApproval: a steward's decision on one Train (bound to its spec hash) or a standing
approval for federated rounds: the exact image digest, ``command`` and ``args``, the query
hashes, bounds on every parameter, the requesters it covers, a number of runs and an expiry.

Who the approver is gets bound to ``request.userInfo`` by a ValidatingAdmissionPolicy in the
chart; the operator still refuses self-approval and duplicate approvers.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from pht_contract.base import ApiModel, DnsLabel, Iri, Sha256Hex, Timestamp


class TrainRef(ApiModel):
    """The one Train this approval is for, bound to the spec hash the steward reviewed."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """Name of the Train."""
    spec_hash: Sha256Hex
    """`status.specHash` of the Train as the steward reviewed it."""
    uid: str | None = Field(default=None, min_length=1, max_length=64)
    """The Train's uid (`pht approve` sets it): never counts for a later Train of that name."""


ParameterType = Literal["string", "integer", "number", "boolean", "array", "object"]
ItemType = Literal["string", "integer", "number", "boolean"]
PARAMETER_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class ParameterBound(ApiModel):
    """One parameter a standing approval allows and the bounds its value must keep (a subset
    of JSON Schema). A parameter the approval does not name is refused."""

    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        (
            "(self.type == 'array' || self.type == 'object') == has(self.items)",
            "items (the element type) is required for array and object parameters, and only "
            "for them",
        ),
        (
            "!has(self.minimum) || !has(self.maximum) || "
            "double(self.minimum) <= double(self.maximum)",
            "minimum is larger than maximum",
        ),
    )

    name: Annotated[str, Field(pattern=PARAMETER_NAME, min_length=1, max_length=128)]
    """The parameter's key in the Train's `parameters` object."""
    type: ParameterType
    """JSON type of the value; an `object` is a map of scalar values (`items`)."""
    required: bool = False
    """The Train must set it."""
    items: ItemType | None = None
    """Type of each element (array) or each value (object)."""
    minimum: float | None = None
    """Smallest number allowed (for numbers, or for each numeric element or value)."""
    maximum: float | None = None
    """Largest number allowed (for numbers, or for each numeric element or value)."""
    enum: list[Annotated[str, Field(max_length=256)]] | None = Field(default=None, max_length=64)
    """The only values allowed (numbers written as strings, e.g. "70")."""
    max_items: int | None = Field(default=None, ge=0, le=4096)
    """Most elements (array) or entries (object)."""
    max_length: int | None = Field(default=None, ge=0, le=16384)
    """Longest string (for strings, or each string element or value)."""
    keys: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=256
    )
    """For an object: the only keys it may hold."""

    @model_validator(mode="after")
    def _coherent(self) -> "ParameterBound":
        if (self.type in ("array", "object")) != (self.items is not None):
            raise ValueError(
                "items (the element type) is required for array and object parameters, and only "
                "for them"
            )
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is larger than maximum")
        scalar = self.items if self.type in ("array", "object") else self.type
        if self.enum is not None and scalar in ("integer", "number"):
            for entry in self.enum:
                try:
                    float(entry)
                except ValueError:
                    raise ValueError(f"enum entry {entry!r} is not a number") from None
        return self


class StandingScope(ApiModel):
    """A standing approval: covers future Trains that match every field below exactly."""

    image_digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$", max_length=71)
    """The exact image (by digest) the approval covers."""
    query_hashes: list[Sha256Hex] = Field(min_length=1, max_length=32)
    """Normalised hashes of the queries covered; a Train must name queries, all among them."""
    command: list[Annotated[str, Field(max_length=1024)]] | None = Field(
        default=None, max_length=16
    )
    """The exact `command` a covered Train has; unset: the Train may not override it."""
    args: list[Annotated[str, Field(max_length=1024)]] | None = Field(default=None, max_length=16)
    """The exact `args` a covered Train has; unset: the Train may not set any."""
    parameters: list[ParameterBound] = Field(
        default_factory=list, max_length=64, json_schema_extra={"x-list-map-keys": ["name"]}
    )
    """Every parameter a covered Train may set, with its bounds; unset: no parameters."""
    graphs: list[Iri] | None = Field(default=None, max_length=32)
    """The exact `graphs` a covered Train reads; unset: the Train may not name any."""
    aggregates_hash: Sha256Hex | None = None
    """The hash of the exact `aggregates` a covered Train declares (`pht validate` prints it);
    unset: a covered Train may declare none."""
    input_artifacts: list[Sha256Hex] = Field(default_factory=list, max_length=64)
    """Hashes of the input artifacts a covered Train may bring; unset: none."""
    requesters: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        min_length=1, max_length=64
    )
    """Kubernetes usernames (the Train's requested-by annotation) whose Trains it covers."""
    max_runs: int = Field(ge=1, le=1000)
    """Most Trains it covers (capped by the policy's `approval.standing.maxRuns`)."""
    expires_at: Timestamp
    """When it stops covering Trains (capped by the policy's `approval.standing.maxDays`)."""

    @model_validator(mode="after")
    def _unique_parameters(self) -> "StandingScope":
        names = [p.name for p in self.parameters]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"parameter names must be unique; repeated: {', '.join(repeated)}")
        return self


class TrainApprovalSpec(ApiModel):
    """A steward's decision: on one Train (`train`) or standing (`standing`), never both."""

    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = (
        ("has(self.train) != has(self.standing)", "set exactly one of train or standing"),
        ("self == oldSelf", "an approval cannot be changed; create a new one"),
    )

    train: TrainRef | None = None
    """The one Train approved or rejected."""
    standing: StandingScope | None = None
    """What a standing approval covers."""
    decision: Literal["Approve", "Reject"] = "Approve"
    """`Approve`, or `Reject` (one matching rejection is final)."""
    approver: Annotated[str, Field(min_length=1, max_length=253)]
    """The steward's Kubernetes username; admission binds it to request.userInfo.username."""
    comment: str | None = Field(default=None, max_length=1024)
    """The steward's note, for the record."""

    @model_validator(mode="after")
    def _exactly_one_scope(self) -> "TrainApprovalSpec":
        if (self.train is None) == (self.standing is None):
            raise ValueError("set exactly one of train or standing")
        return self


class TrainApprovalStatus(ApiModel):
    """How much of a standing approval is used; written by the station operator only."""

    runs_used: int = Field(default=0, ge=0)
    """Runs the standing approval has covered so far."""
    consumed_by: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=1000
    )
    """uids of the Trains it covered (each counted once)."""


class TrainApproval(ApiModel):
    api_version: str = Field(max_length=64)
    kind: Literal["TrainApproval"]
    metadata: dict[str, object]
    spec: TrainApprovalSpec
    status: TrainApprovalStatus | None = None


__all__ = [
    "DnsLabel",
    "ParameterBound",
    "StandingScope",
    "TrainApproval",
    "TrainApprovalSpec",
    "TrainRef",
]
