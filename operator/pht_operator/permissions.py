"""What the operator must be allowed to do, and a startup check that it is.

The list below is every verb the operator uses, where it uses it; the Helm chart's Roles grant
exactly these. At startup (and every half minute while something is missing) the operator asks
the API server with SelfSubjectAccessReviews, which every authenticated identity may create.
A refusal makes ``/healthz`` answer 503 with the missing permissions and is logged as an error,
so a Role that lacks a verb is visible at once instead of as Trains that never move.
"""

from __future__ import annotations

from dataclasses import dataclass

from pht_contract import constants
from pht_operator.kube import ApiError, KubeClient
from pht_operator.settings import OperatorSettings


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str
    namespace: str

    def __str__(self) -> str:
        kind = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {kind} in {self.namespace}"


def _grant(
    verbs: tuple[str, ...], group: str, resources: tuple[str, ...], namespace: str
) -> list[Permission]:
    return [Permission(v, group, r, namespace) for r in resources for v in verbs]


def required(settings: OperatorSettings) -> list[Permission]:
    """Every permission the operator uses, per namespace."""
    group = constants.API_GROUP
    needs: list[Permission] = []
    for ns in settings.station_namespaces:
        crds = (constants.TRAIN_PLURAL, constants.POLICY_PLURAL, constants.APPROVAL_PLURAL)
        needs += _grant(("get", "list", "watch"), group, crds, ns)
        # The Train's finalizer, then its status; a standing approval's use count.
        statuses = (f"{constants.TRAIN_PLURAL}/status", f"{constants.APPROVAL_PLURAL}/status")
        needs += _grant(("patch",), group, (constants.TRAIN_PLURAL, *statuses), ns)
        needs += _grant(("create",), "events.k8s.io", ("events",), ns)
    runs = settings.run_namespace
    needs += _grant(("create", "delete", "get", "list", "watch", "patch"), "batch", ("jobs",), runs)
    needs += _grant(("create", "delete", "get"), "", ("secrets",), runs)
    needs += _grant(("create", "delete", "get"), "networking.k8s.io", ("networkpolicies",), runs)
    needs += _grant(("list", "watch"), "", ("pods",), runs)
    needs += _grant(("create",), "events.k8s.io", ("events",), runs)
    return needs


async def missing(kube: KubeClient, needs: list[Permission]) -> list[Permission]:
    """The permissions the API server refuses to the operator's own identity."""
    refused: list[Permission] = []
    for need in needs:
        resource, _, sub = need.resource.partition("/")
        attributes = {
            "namespace": need.namespace,
            "verb": need.verb,
            "group": need.group,
            "resource": resource,
        }
        if sub:
            attributes["subresource"] = sub
        try:
            allowed = await kube.allowed(attributes)
        except ApiError:
            allowed = False
        if not allowed:
            refused.append(need)
    return refused
