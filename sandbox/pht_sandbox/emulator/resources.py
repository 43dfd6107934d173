"""The resource types the emulator serves, and how it names them (group, version, plural)."""

from __future__ import annotations

import dataclasses
from typing import Final

from pht_contract import constants

#: Marks objects whose status was written by a simulator, never by a real controller.
SIMULATED_ANNOTATION: Final = "sandbox.pht.health-ai.nl/simulated"


@dataclasses.dataclass(frozen=True)
class ResourceSpec:
    """What the emulator needs to know about one resource type."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``group/version/plural``, or ``version/plural`` for the core group."""
        return f"{self.group}/{self.version}/{self.plural}".lstrip("/")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def _crd(kind: str, plural: str, *, status: bool, short: tuple[str, ...]) -> ResourceSpec:
    return ResourceSpec(
        constants.API_GROUP,
        constants.API_VERSION,
        plural,
        kind,
        status_subresource=status,
        short_names=short,
        categories=("pht",),
    )


TRAINS: Final = _crd(constants.TRAIN_KIND, constants.TRAIN_PLURAL, status=True, short=("tr",))
POLICIES: Final = _crd(
    constants.POLICY_KIND, constants.POLICY_PLURAL, status=False, short=("spol",)
)
APPROVALS: Final = _crd(
    constants.APPROVAL_KIND, constants.APPROVAL_PLURAL, status=True, short=("tra",)
)
JOBS: Final = ResourceSpec("batch", "v1", "jobs", "Job", status_subresource=True)
PODS: Final = ResourceSpec("", "v1", "pods", "Pod", status_subresource=True, short_names=("po",))
SECRETS: Final = ResourceSpec("", "v1", "secrets", "Secret")
CONFIGMAPS: Final = ResourceSpec("", "v1", "configmaps", "ConfigMap", short_names=("cm",))
NAMESPACES: Final = ResourceSpec(
    "", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True
)
EVENTS: Final = ResourceSpec("", "v1", "events", "Event", short_names=("ev",))
NEW_EVENTS: Final = ResourceSpec("events.k8s.io", "v1", "events", "Event")
NETWORK_POLICIES: Final = ResourceSpec(
    "networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)
)
LEASES: Final = ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease")
CRDS: Final = ResourceSpec(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
    status_subresource=True,
)

STANDARD_RESOURCES: Final = (
    TRAINS,
    POLICIES,
    APPROVALS,
    JOBS,
    PODS,
    SECRETS,
    CONFIGMAPS,
    NAMESPACES,
    EVENTS,
    NEW_EVENTS,
    NETWORK_POLICIES,
    LEASES,
    CRDS,
)
