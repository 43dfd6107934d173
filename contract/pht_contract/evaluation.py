"""Pure policy evaluation: may this Train run at this station?

One function, :func:`evaluate`, shared by ``pht validate``, the operator and the tests. It reads
nothing from a cluster: capacity (the concurrency limit) is decided by the operator with
:func:`has_capacity`, because only capacity is a reason to wait rather than refuse.
"""

import fnmatch
from dataclasses import dataclass, field

from pht_contract.conditions import Reason
from pht_contract.policies import DataAccessPolicy, StationPolicySpec
from pht_contract.quantities import QuantityError, parse_quantity
from pht_contract.signedreviews import SignedReviewError, parse_signed_review
from pht_contract.sparql import QueryFacts, QuerySyntaxError, inspect_query, query_hash
from pht_contract.trains import TrainSpec


@dataclass(frozen=True)
class Violation:
    reason: Reason
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.reason}]"


@dataclass(frozen=True)
class Decision:
    violations: tuple[Violation, ...] = ()
    requires_approval: bool = False
    approved_query_hashes: tuple[str, ...] = ()
    timeout_seconds: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def admitted(self) -> bool:
        return not self.violations

    @property
    def reason(self) -> Reason:
        return self.violations[0].reason if self.violations else Reason.ADMITTED

    @property
    def message(self) -> str:
        if not self.violations:
            return "the Train satisfies the station policy"
        return "; ".join(f"{v.field}: {v.message}" for v in self.violations)


def requires_digest(policy: StationPolicySpec) -> bool:
    return policy.images.require_digest or policy.approval.mode != "None"


def _check_image(spec: TrainSpec, policy: StationPolicySpec) -> list[Violation]:
    found: list[Violation] = []
    images = policy.images
    repository = spec.image_repository
    if images.allowed_registries and spec.image_registry not in images.allowed_registries:
        found.append(
            Violation(
                Reason.IMAGE_NOT_ALLOWED,
                "spec.image",
                f"registry {spec.image_registry!r} is not one of the station's allowed "
                f"registries ({', '.join(images.allowed_registries)})",
            )
        )
    elif images.allowed_images and not any(
        fnmatch.fnmatchcase(repository, pattern) for pattern in images.allowed_images
    ):
        found.append(
            Violation(
                Reason.IMAGE_NOT_ALLOWED,
                "spec.image",
                f"image {repository!r} matches none of the allowed images "
                f"({', '.join(images.allowed_images)})",
            )
        )
    if requires_digest(policy) and spec.image_digest is None:
        why = "approval" if policy.approval.mode != "None" else "the station policy"
        found.append(
            Violation(
                Reason.DIGEST_REQUIRED,
                "spec.image",
                f"the image must be pinned by digest (image@sha256:…) because {why} requires it",
            )
        )
    return found


def _check_signed_review(spec: TrainSpec) -> list[Violation]:
    """A signed review must be a well-formed review of this Train's image digest; whether
    its key is trusted is the disclosure gate's question (an untrusted key only holds)."""
    if spec.signed_review is None:
        return []
    try:
        signed = parse_signed_review(spec.signed_review)
    except SignedReviewError as exc:
        return [Violation(Reason.INVALID_SIGNED_REVIEW, "spec.signedReview", str(exc))]
    if spec.image_digest is None:
        message = "a signed review counts only for an image pinned by digest (image@sha256:…)"
    elif signed.review.digest != spec.image_digest:
        message = (
            f"the signed review is of {signed.review.digest}, not of this Train's image "
            f"{spec.image_digest}: attach the review of the image the Train runs"
        )
    else:
        return []
    return [Violation(Reason.INVALID_SIGNED_REVIEW, "spec.signedReview", message)]


def _exceeds(value: str, limit: str) -> bool:
    return parse_quantity(value) > parse_quantity(limit)


def _check_resources(spec: TrainSpec, policy: StationPolicySpec) -> list[Violation]:
    found: list[Violation] = []
    res, lim = spec.resources, policy.limits
    checks = (
        ("cpu", res.cpu, lim.max_cpu, Reason.EXCEEDS_CPU_LIMIT, "maxCpu"),
        ("memory", res.memory, lim.max_memory, Reason.EXCEEDS_MEMORY_LIMIT, "maxMemory"),
        (
            "ephemeralStorage",
            res.ephemeral_storage,
            lim.max_ephemeral_storage,
            Reason.EXCEEDS_EPHEMERAL_STORAGE_LIMIT,
            "maxEphemeralStorage",
        ),
    )
    for name, value, limit, reason, limit_name in checks:
        try:
            if parse_quantity(value) <= 0:
                # Kubernetes reads a zero limit as "no limit": never let one through.
                found.append(
                    Violation(
                        Reason.INVALID_RESOURCES,
                        f"spec.resources.{name}",
                        f"{value} is not a positive amount; a zero limit would mean no limit. "
                        f"Ask for what the run needs, at most the station's {limit_name} of "
                        f"{limit}, or leave the field out for the default",
                    )
                )
            elif _exceeds(value, limit):
                found.append(
                    Violation(
                        reason,
                        f"spec.resources.{name}",
                        f"{value} exceeds the station's {limit_name} of {limit}",
                    )
                )
        except QuantityError as exc:
            found.append(Violation(reason, f"spec.resources.{name}", str(exc)))
    if res.gpu > lim.max_gpus:
        found.append(
            Violation(
                Reason.EXCEEDS_GPU_LIMIT,
                "spec.resources.gpu",
                f"{res.gpu} GPUs exceed the station's maxGpus of {lim.max_gpus}",
            )
        )
    if res.gpu_model and lim.allowed_gpu_models and res.gpu_model not in lim.allowed_gpu_models:
        found.append(
            Violation(
                Reason.GPU_MODEL_NOT_ALLOWED,
                "spec.resources.gpuModel",
                f"GPU model {res.gpu_model!r} is not one of {', '.join(lim.allowed_gpu_models)}",
            )
        )
    if (res.gpu_model or res.min_gpu_memory_mib) and res.gpu == 0:
        found.append(
            Violation(
                Reason.EXCEEDS_GPU_LIMIT,
                "spec.resources.gpu",
                "a GPU model or minimum GPU memory is set but no GPU is requested",
            )
        )
    return found


def check_query_facts(
    text: str, data: DataAccessPolicy, field_path: str, facts: QueryFacts | None = None
) -> tuple[list[Violation], str | None]:
    """Refusals for one query text under a data-access policy, and its hash when parseable.

    ``facts`` may be given when the caller already parsed ``text`` (parsing is the cost).
    """
    if facts is None:
        try:
            facts = inspect_query(text)
        except QuerySyntaxError as exc:
            return [Violation(Reason.INVALID_QUERY, field_path, str(exc))], None
    found: list[Violation] = []
    allowed_forms = {"SELECT", "ASK"} | (
        {"CONSTRUCT", "DESCRIBE"} if data.allow_construct_describe else set()
    )
    if facts.form == "UPDATE":
        found.append(Violation(Reason.QUERY_NOT_ALLOWED, field_path, "SPARQL updates are refused"))
    elif facts.form not in allowed_forms:
        found.append(
            Violation(
                Reason.QUERY_NOT_ALLOWED,
                field_path,
                f"{facts.form} queries are not allowed by the station policy",
            )
        )
    if facts.uses_service:
        found.append(
            Violation(Reason.QUERY_NOT_ALLOWED, field_path, "SERVICE (federated query) is refused")
        )
    outside = sorted(facts.named_graphs - set(data.allowed_graphs))
    if outside:
        found.append(
            Violation(
                Reason.GRAPH_NOT_ALLOWED,
                field_path,
                f"names graphs outside the policy: {', '.join(outside)}",
            )
        )
    return found, query_hash(text)


def _check_data_access(
    spec: TrainSpec, policy: StationPolicySpec
) -> tuple[list[Violation], list[str]]:
    found: list[Violation] = []
    hashes: list[str] = []
    data = policy.data_access
    for index, graph in enumerate(spec.graphs or []):
        if graph not in data.allowed_graphs:
            found.append(
                Violation(
                    Reason.GRAPH_NOT_ALLOWED,
                    f"spec.graphs[{index}]",
                    f"graph {graph!r} is not one of the station's allowed graphs",
                )
            )
    for index, query in enumerate(spec.queries or []):
        violations, digest = check_query_facts(query.sparql, data, f"spec.queries[{index}].sparql")
        found.extend(violations)
        if digest:
            hashes.append(digest)
    if data.query_mode == "ApprovedQueriesOnly" and not spec.queries:
        found.append(
            Violation(
                Reason.QUERIES_REQUIRED,
                "spec.queries",
                "this station runs approved queries only: list the SPARQL queries the train runs",
            )
        )
    return found, hashes


def _check_aggregates(spec: TrainSpec, policy: StationPolicySpec) -> list[Violation]:
    """Groups only by variables the steward lists as releasable categories; coefficients
    only within the station's ceiling."""
    found: list[Violation] = []
    variables = {v.name: v for v in policy.disclosure.releasable_variables}
    ceiling = policy.disclosure.aggregates.max_abs_coefficient
    for index, aggregate in enumerate(spec.aggregates or []):
        where = f"spec.aggregates[{index}]"
        for position, name in enumerate(aggregate.by):
            variable = variables.get(name)
            if variable is None or not variable.values:
                found.append(
                    Violation(
                        Reason.AGGREGATE_NOT_ALLOWED,
                        f"{where}.by[{position}]",
                        f"{name!r} is not a releasable variable with listed values in the "
                        "station's policy: an aggregate groups only by those",
                    )
                )
        bound = aggregate.coefficients
        if bound is not None and bound.max_abs > ceiling:
            found.append(
                Violation(
                    Reason.AGGREGATE_NOT_ALLOWED,
                    f"{where}.coefficients.maxAbs",
                    f"{bound.max_abs:g} exceeds the station's ceiling of {ceiling:g} on "
                    "model coefficients",
                )
            )
    return found


def effective_timeout(spec: TrainSpec, policy: StationPolicySpec) -> int:
    return spec.timeout_seconds or policy.timeouts.default_seconds


def evaluate(spec: TrainSpec, policy: StationPolicySpec) -> Decision:
    """Every reason the policy refuses this Train, each with its field path; empty = admitted."""
    violations: list[Violation] = []
    violations += _check_image(spec, policy)
    violations += _check_signed_review(spec)
    violations += _check_resources(spec, policy)
    timeout = effective_timeout(spec, policy)
    if timeout > policy.timeouts.max_seconds:
        violations.append(
            Violation(
                Reason.TIMEOUT_TOO_LONG,
                "spec.timeoutSeconds",
                f"{timeout}s exceeds the station's maximum of {policy.timeouts.max_seconds}s",
            )
        )
    if spec.requester.organisation not in policy.organisations:
        violations.append(
            Violation(
                Reason.UNKNOWN_ORGANISATION,
                "spec.requester.organisation",
                f"organisation {spec.requester.organisation!r} is not one this station knows "
                f"({', '.join(policy.organisations)})",
            )
        )
    data_violations, hashes = _check_data_access(spec, policy)
    violations += data_violations
    violations += _check_aggregates(spec, policy)
    return Decision(
        violations=tuple(violations),
        requires_approval=policy.approval.mode != "None",
        approved_query_hashes=tuple(hashes),
        timeout_seconds=timeout,
    )


def has_capacity(active_trains: int, policy: StationPolicySpec) -> bool:
    """Whether one more Train may start; when not, the Train waits (not a refusal)."""
    return active_trains < policy.limits.max_concurrent_trains


def required_approvers(policy: StationPolicySpec) -> int:
    return {"None": 0, "OneSteward": 1, "TwoStewards": 2}[policy.approval.mode]
