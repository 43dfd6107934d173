"""CRDs generated from the pydantic models, so the cluster and the code never disagree.

Pydantic's JSON schema is turned into a Kubernetes *structural* schema: references inlined,
``Optional`` unwrapped, titles dropped, list-maps marked, and the CEL rules each model declares
(``cel_rules`` and ``immutable_except``) emitted as ``x-kubernetes-validations``. Only the
portable CEL subset is used (``has``, ``==``, ``!=``, ``&&``, ternaries); see docs/api.md.
"""

from typing import Any

import yaml
from pydantic import BaseModel

from pht_contract.approvals import TrainApproval, TrainApprovalSpec, TrainApprovalStatus
from pht_contract.base import ApiModel
from pht_contract.constants import (
    API_GROUP,
    API_VERSION,
    APPROVAL_KIND,
    APPROVAL_PLURAL,
    POLICY_KIND,
    POLICY_PLURAL,
    TRAIN_KIND,
    TRAIN_PLURAL,
)
from pht_contract.policies import StationPolicy, StationPolicySpec
from pht_contract.trains import TrainSpec, TrainStatus


def _model_classes() -> dict[str, type[ApiModel]]:
    found: dict[str, type[ApiModel]] = {}
    stack: list[type[ApiModel]] = [ApiModel]
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def immutability_rule(model: type[ApiModel], except_fields: frozenset[str]) -> str:
    """``self.f == oldSelf.f`` for every field but the exceptions, presence included."""
    parts: list[str] = []
    for name, info in model.model_fields.items():
        if name in except_fields:
            continue
        alias = info.alias or name
        if info.is_required():
            parts.append(f"self.{alias} == oldSelf.{alias}")
        else:
            parts.append(
                f"(has(self.{alias}) ? (has(oldSelf.{alias}) && self.{alias} == oldSelf.{alias})"
                f" : !has(oldSelf.{alias}))"
            )
    return " && ".join(parts)


def _rules_for(name: str) -> list[dict[str, str]]:
    cls = _model_classes().get(name)
    if cls is None:
        return []
    rules = [{"rule": rule, "message": message} for rule, message in cls.cel_rules]
    except_fields = getattr(cls, "immutable_except", None)
    if except_fields is not None:
        rules.append(
            {
                "rule": immutability_rule(cls, except_fields),
                "message": "the spec is immutable once created, except suspend; create a new "
                "Train instead",
            }
        )
    return rules


def structural(
    schema: dict[str, Any], defs: dict[str, Any], def_name: str | None = None
) -> dict[str, Any]:
    """Convert one pydantic JSON-schema node into a structural OpenAPI v3 schema node."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        merged = {**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs, name)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union {schema['anyOf']} structurally")
        merged = {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
        return structural(merged, defs, def_name)
    out: dict[str, Any] = {}
    for key in (
        "description",
        "type",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "maxProperties",
        "enum",
    ):
        if key in schema:
            out[key] = schema[key]
    if "const" in schema:
        out["enum"] = [schema["const"]]
        out.setdefault("type", "string")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "default" in schema and schema["default"] is not None:
        out["default"] = schema["default"]
    kind = out.get("type")
    if kind == "object":
        props = schema.get("properties")
        if props:
            out["properties"] = {k: structural(v, defs) for k, v in props.items()}
            if schema.get("required"):
                out["required"] = list(schema["required"])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            out["additionalProperties"] = structural(additional, defs)
    elif kind == "array":
        out["items"] = structural(schema["items"], defs)
        keys = schema.get("x-list-map-keys")
        if keys:
            out["x-kubernetes-list-type"] = "map"
            out["x-kubernetes-list-map-keys"] = list(keys)
    rules = _rules_for(def_name) if def_name else []
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def _object_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(raw, defs, model.__name__)


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    spec_model: type[BaseModel],
    status_model: type[BaseModel] | None,
    columns: list[dict[str, Any]],
    root_rules: list[dict[str, str]] | None = None,
    description: str = "",
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {
            "type": "string",
            "description": f"The API group and version: {API_GROUP}/{API_VERSION}.",
        },
        "kind": {"type": "string", "description": f"The kind of object: {kind}."},
        # The API server refuses anything but a type here (it documents ObjectMeta itself).
        "metadata": {"type": "object"},
        "spec": _object_schema(spec_model),
    }
    if status_model is not None:
        properties["status"] = _object_schema(status_model)
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": properties,
    }
    if root_rules:
        schema["x-kubernetes-validations"] = root_rules
    version: dict[str, Any] = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": columns,
    }
    if status_model is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "pht-station"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["pht"],
            },
            "versions": [version],
        },
    }


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def train_crd() -> dict[str, Any]:
    return _crd(
        TRAIN_KIND,
        TRAIN_PLURAL,
        ["tr"],
        TrainSpec,
        TrainStatus,
        [
            {"name": "Summary", "type": "string", "jsonPath": ".status.summary"},
            {
                "name": "Reason",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Succeeded")].reason',
                "description": "Why the Train is where it is (the Succeeded condition's reason)",
            },
            {"name": "GPUs", "type": "integer", "jsonPath": ".spec.resources.gpu"},
            {"name": "Progress", "type": "integer", "jsonPath": ".status.progress.percent"},
            _age(),
            {
                "name": "Duration",
                "type": "integer",
                "jsonPath": ".status.durationSeconds",
                "description": "Seconds from start to completion",
            },
            {
                "name": "Started",
                "type": "date",
                "jsonPath": ".status.startTime",
                "description": "When the run started",
                "priority": 1,
            },
            {
                "name": "Completed",
                "type": "date",
                "jsonPath": ".status.completionTime",
                "description": "When the Train reached its terminal condition",
                "priority": 1,
            },
            {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
            {
                "name": "Organisation",
                "type": "string",
                "jsonPath": ".spec.requester.organisation",
                "priority": 1,
            },
        ],
        description="An algorithm that travels to this station's data.",
    )


def station_policy_crd() -> dict[str, Any]:
    return _crd(
        POLICY_KIND,
        POLICY_PLURAL,
        ["spol"],
        StationPolicySpec,
        None,
        [
            {"name": "Approval", "type": "string", "jsonPath": ".spec.approval.mode"},
            {"name": "MaxGPUs", "type": "integer", "jsonPath": ".spec.limits.maxGpus"},
            {"name": "QueryMode", "type": "string", "jsonPath": ".spec.dataAccess.queryMode"},
            _age(),
        ],
        root_rules=[{"rule": r, "message": m} for r, m in StationPolicy.cel_rules],
        description="What this station's data steward allows; one per station namespace.",
    )


def approval_crd() -> dict[str, Any]:
    return _crd(
        APPROVAL_KIND,
        APPROVAL_PLURAL,
        ["tra"],
        TrainApprovalSpec,
        TrainApprovalStatus,
        [
            {"name": "Train", "type": "string", "jsonPath": ".spec.train.name"},
            {"name": "Decision", "type": "string", "jsonPath": ".spec.decision"},
            {"name": "Approver", "type": "string", "jsonPath": ".spec.approver"},
            {"name": "RunsUsed", "type": "integer", "jsonPath": ".status.runsUsed"},
            _age(),
        ],
        description="A data steward's approval of one Train, or a standing approval.",
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """File name → CRD, in the order they are installed."""
    return {
        "stationpolicies.yaml": station_policy_crd(),
        "trains.yaml": train_crd(),
        "trainapprovals.yaml": approval_crd(),
    }


def render(crd: dict[str, Any]) -> str:
    return yaml.safe_dump(crd, sort_keys=False, width=100)


def render_all() -> str:
    return "".join("---\n" + render(crd) for crd in all_crds().values())


__all__ = ["TrainApproval", "all_crds", "render", "render_all"]
