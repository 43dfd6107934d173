"""Evaluates a rendered ValidatingAdmissionPolicy offline with cel-python the way the API server
does: variables first, in order, then every validation; a failed validation yields its message
(the messageExpression's value when there is one)."""

from typing import Any

import celpy
from celpy.adapter import json_to_cel

from .rendering import documents, one, render_profile


def policy(name_suffix: str, profile: str = "default") -> dict[str, Any]:
    """The rendered policy whose name ends with `name_suffix` (the chart renders several)."""
    policies = [
        d
        for d in documents(render_profile(profile))
        if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"].endswith(name_suffix)
    ]
    return one(policies, "ValidatingAdmissionPolicy")


def _evaluate(expression: str, activation: dict[str, Any]) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression)).evaluate(activation)


def failures(
    admission_policy: dict[str, Any],
    request: dict[str, Any],
    obj: dict[str, Any],
    old_object: dict[str, Any] | None = None,
) -> list[str]:
    """The messages the API server would return for this request (empty: admitted)."""
    activation: dict[str, Any] = {
        "request": json_to_cel(request),
        "object": json_to_cel(obj),
        "oldObject": json_to_cel(old_object),
    }
    variables: dict[str, Any] = {}
    for variable in admission_policy["spec"].get("variables", []):
        activation["variables"] = json_to_cel(variables)
        variables[variable["name"]] = _evaluate(variable["expression"], activation)
    activation["variables"] = json_to_cel(variables)
    messages = []
    for validation in admission_policy["spec"]["validations"]:
        if not bool(_evaluate(validation["expression"], activation)):
            if "messageExpression" in validation:
                messages.append(str(_evaluate(validation["messageExpression"], activation)))
            else:
                messages.append(validation["message"])
    return messages
