"""Offline validation of manifests: schema, CEL and policy, every problem with its field path.

Used by ``pht validate`` and the tests; the operator uses the same models and
:func:`pht_contract.evaluation.evaluate`, so a manifest that passes here is judged the same way
in the cluster.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pht_contract.approvals import TrainApproval
from pht_contract.cel import check as check_cel
from pht_contract.constants import GROUP_VERSION
from pht_contract.crds import all_crds
from pht_contract.evaluation import evaluate
from pht_contract.policies import StationPolicy, StationPolicySpec
from pht_contract.trains import Train

_MODELS: dict[str, type[Train] | type[StationPolicy] | type[TrainApproval]] = {
    "Train": Train,
    "StationPolicy": StationPolicy,
    "TrainApproval": TrainApproval,
}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    reason: str | None = None

    def __str__(self) -> str:
        suffix = f" [{self.reason}]" if self.reason else ""
        return f"{self.path}: {self.message}{suffix}"


def _crd_schema(kind: str) -> dict[str, Any]:
    for crd in all_crds().values():
        if crd["spec"]["names"]["kind"] == kind:
            schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(kind)


def _loc_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<root>"


def pydantic_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
        problems.append(Problem(_loc_path(item["loc"]), message))
    return problems


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name", "<unnamed>") if isinstance(meta, dict) else "<unnamed>"
    return f"{obj.get('kind', '<no kind>')}/{name}"


def validate_object(
    obj: dict[str, Any],
    policy: StationPolicySpec | None = None,
    old: dict[str, Any] | None = None,
) -> list[Problem]:
    """Every problem with one object; an empty list means it is valid (and admitted)."""
    kind = obj.get("kind")
    if kind not in _MODELS:
        return [Problem("kind", f"unknown kind {kind!r}; expected one of {', '.join(_MODELS)}")]
    if obj.get("apiVersion") != GROUP_VERSION:
        return [Problem("apiVersion", f"expected {GROUP_VERSION!r}, got {obj.get('apiVersion')!r}")]
    problems: list[Problem] = []
    try:
        model = _MODELS[kind].model_validate(obj)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc))
        model = None
    for failure in check_cel(_crd_schema(kind), obj, old):
        problems.append(Problem(failure.path, failure.message, "CEL"))
    if isinstance(model, Train) and policy is not None:
        decision = evaluate(model.spec, policy)
        problems.extend(Problem(v.field, v.message, v.reason) for v in decision.violations)
    return problems


def load_documents(path: Path) -> list[dict[str, Any]]:
    """YAML documents of a file (multi-document files allowed), empty ones skipped."""
    with path.open() as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d is not None]
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: document {index + 1} is not a mapping")
    return docs


def find_policy(docs: Iterable[dict[str, Any]]) -> StationPolicySpec | None:
    for doc in docs:
        if doc.get("kind") == "StationPolicy":
            try:
                return StationPolicy.model_validate(doc).spec
            except ValidationError:
                return None
    return None
