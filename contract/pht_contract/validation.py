"""Offline validation of manifests: schema, CEL and policy, every problem with its field path.

Used by ``pht validate``, the station in a box and the tests; the operator uses the same models
and :func:`pht_contract.evaluation.evaluate`. Types are judged by the generated CRD's
openAPIV3Schema with a JSON-schema validator, as the API server judges them (the pydantic
models alone would coerce ``"2"`` into an integer or ``"true"`` into a boolean, which the server
refuses); the models then add what the schema cannot say. As on the server, fields set to
``null`` are dropped first. ``metadata`` is judged as the server judges every object's: a name
that is a DNS subdomain, label and annotation keys that are qualified names. YAML is read as
kubectl reads it: an unquoted date-time stays a string.
"""

import datetime
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
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


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_FORMATS = jsonschema.FormatChecker(formats=())


def _is_date_time(value: object) -> bool:
    # The API server accepts RFC 3339 date-times only (not every ISO 8601 spelling).
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


_FORMATS.checks("date-time", raises=ValueError)(_is_date_time)


def _integer(checker: object, value: object) -> bool:
    # The API server decodes JSON numbers and accepts 2.0 where an integer is wanted (a whole
    # number); booleans are never numbers.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_Validator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    type_checker=jsonschema.Draft4Validator.TYPE_CHECKER.redefine("integer", _integer),
)


@functools.cache
def _schema_validator(kind: str) -> Any:
    return _Validator(_crd_schema(kind), format_checker=_FORMATS)


def without_nulls(value: Any) -> Any:
    """The object as the API server validates it: fields set to null are pruned first."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _subdomain(text: str) -> bool:
    return len(text) <= 253 and _DNS_SUBDOMAIN.match(text) is not None


def _qualified_name(key: str) -> bool:
    """``[prefix/]name`` as label and annotation keys must be: a DNS-subdomain prefix and a name
    of at most 63 characters, alphanumeric at both ends."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not _subdomain(prefix):
        return False
    return len(name) <= 63 and _NAME_PART.match(name) is not None


def metadata_problems(obj: dict[str, Any]) -> list[Problem]:
    """What the API server refuses in ``metadata`` of any object (before the CRD's schema)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return []
    problems: list[Problem] = []
    name = meta.get("name")
    if name is None:
        if not meta.get("generateName"):
            problems.append(
                Problem("metadata.name", "name or generateName is required", "Metadata")
            )
    elif not isinstance(name, str) or not _subdomain(name):
        problems.append(
            Problem(
                "metadata.name",
                f"{name!r} is not a valid name: lowercase letters, digits, '-' and '.', starting "
                "and ending with a letter or digit, at most 253 characters",
                "Metadata",
            )
        )
    namespace = meta.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str)
        or len(namespace) > 63
        or not re.fullmatch(_DNS_LABEL, namespace)
    ):
        problems.append(
            Problem("metadata.namespace", f"{namespace!r} is not a namespace name", "Metadata")
        )
    for field_name, value_ok in (
        ("labels", lambda v: isinstance(v, str) and len(v) <= 63 and _LABEL_VALUE.match(v)),
        ("annotations", lambda v: isinstance(v, str)),
    ):
        entries = meta.get(field_name)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            problems.append(
                Problem(f"metadata.{field_name}", "must be a map of strings", "Metadata")
            )
            continue
        for key, value in entries.items():
            if not _qualified_name(str(key)):
                problems.append(
                    Problem(f"metadata.{field_name}[{key}]", "is not a valid key", "Metadata")
                )
            elif not value_ok(value):
                problems.append(
                    Problem(
                        f"metadata.{field_name}[{key}]",
                        f"{value!r} is not a valid value",
                        "Metadata",
                    )
                )
    return problems


_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")


def schema_problems(kind: str, obj: dict[str, Any]) -> list[Problem]:
    """What the CRD's openAPIV3Schema refuses, with field paths, as the API server would."""
    problems = []
    for error in _schema_validator(kind).iter_errors(obj):
        path = list(error.absolute_path)
        message = error.message
        missing = _REQUIRED.match(message) if error.validator == "required" else None
        if missing:
            # Reported at the missing field itself, as the server and the models do.
            path.append(missing.group("name"))
            message = "required field is missing"
        problems.append(Problem(_loc_path(path), message, "Schema"))
    return sorted(problems, key=lambda p: p.path)


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
    obj = without_nulls(obj)
    old = without_nulls(old) if old is not None else None
    problems: list[Problem] = metadata_problems(obj)
    try:
        model = _MODELS[kind].model_validate(obj)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc))
        model = None
    # The schema judges types as the server does (the models coerce "2" to 2); a field the
    # models already refused is not reported twice.
    refused = {p.path for p in problems}
    problems.extend(p for p in schema_problems(kind, obj) if p.path not in refused)
    for failure in check_cel(_crd_schema(kind), obj, old):
        # A rule the models state as well (same place, same words) is reported once, as CEL.
        problems = [
            p for p in problems if not (p.path == failure.path and failure.message in p.message)
        ]
        problems.append(Problem(failure.path, failure.message, "CEL"))
    if isinstance(model, Train) and policy is not None:
        decision = evaluate(model.spec, policy)
        problems.extend(Problem(v.field, v.message, v.reason) for v in decision.violations)
    return problems


class _KubectlLoader(yaml.SafeLoader):
    """YAML as kubectl reads it: no implicit timestamps (an unquoted ``2027-03-01T00:00:00Z``
    reaches the server as a string, so it must reach the schema as one too)."""


_KubectlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """YAML documents of a file (multi-document files allowed), empty ones skipped."""
    with path.open() as handle:
        docs = [d for d in yaml.load_all(handle, Loader=_KubectlLoader) if d is not None]
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
