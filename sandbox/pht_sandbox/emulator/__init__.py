"""An emulated Kubernetes API server for tests, benchmarks and the station in a box.

kmock's :class:`~kmock.KubernetesEmulator` gives us request parsing, API discovery and a real
HTTP server; its object store is deliberately naive (no uid, no resourceVersion, no
subresources, no selectors). A real operator depends on exactly those semantics — optimistic
concurrency through ``resourceVersion``, a ``/status`` subresource that spec writes cannot touch,
``generation`` bumped by spec changes only, watches that resume from a resourceVersion — so this
class keeps its own store with those rules and serves object requests itself. Discovery,
``/version`` and paths of unregistered resources still go through kmock (and any DSL reactions
a test adds there); failures on object requests are injected with :class:`Faults`.

What it does, like a real API server:

* uid, resourceVersion (one counter for the whole cluster), generation, creationTimestamp,
  ``generateName``;
* ``List`` kinds (``kind: TrainList``) with ``metadata.resourceVersion``;
* label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!``) and the
  ``metadata.name``/``metadata.namespace`` field selectors on list and watch;
* a separate ``/status`` subresource for resources declared with one;
* merge patch (JSON merge patch; strategic merge patch is treated as a merge patch), JSON
  patch, PUT with resourceVersion preconditions (409 on conflict), no-op writes that change
  nothing (no new resourceVersion, no watch event);
* deletion with finalizers (``deletionTimestamp``), background/orphan propagation to objects
  whose ``ownerReferences`` point at the deleted one (foreground is treated as background);
* watches that replay from a resourceVersion (410 Gone when it is too old), bookmarks, and
  ``timeoutSeconds``.

What it adds for tests: :class:`Faults` (HTTP errors for the next N matching requests, dropped
or hung watch streams), a write counter, and a trimmed request log so long benchmarks do not
pay O(requests) per request.

Not done: admission (schema, CEL), RBAC, field managers and server-side apply, Table
rendering and OpenAPI (``kubectl get`` needs them; see the station-in-a-box work).

Usage::

    cluster = ClusterEmulator()
    async with cluster.serving() as url:                  # http://127.0.0.1:PORT
        write_kubeconfig(Path("kubeconfig"), url)         # for Kopf, kubectl, pht
        await cluster.create_object(NAMESPACES, {"metadata": {"name": "pht-requests"}})
        cluster.faults.fail(409, methods=["PATCH"], plural="trains", subresource="status")
        train = cluster.get_object(TRAINS, "pht-requests", "km")
"""

from pht_contract.objects import Obj
from pht_sandbox.emulator.failures import ApiFailure
from pht_sandbox.emulator.faults import Faults
from pht_sandbox.emulator.kubeconfig import write_kubeconfig
from pht_sandbox.emulator.patches import json_patch, merge_patch
from pht_sandbox.emulator.resources import (
    APPROVALS,
    CONFIGMAPS,
    CRDS,
    EVENTS,
    JOBS,
    LEASES,
    NAMESPACES,
    NETWORK_POLICIES,
    NEW_EVENTS,
    PODS,
    POLICIES,
    SECRETS,
    SIMULATED_ANNOTATION,
    STANDARD_RESOURCES,
    TRAINS,
    ResourceSpec,
)
from pht_sandbox.emulator.selectors import field_selector_matches, label_selector_matches
from pht_sandbox.emulator.server import WATCH_HISTORY, ClusterEmulator

__all__ = [
    "APPROVALS",
    "CONFIGMAPS",
    "CRDS",
    "EVENTS",
    "JOBS",
    "LEASES",
    "NAMESPACES",
    "NETWORK_POLICIES",
    "NEW_EVENTS",
    "PODS",
    "POLICIES",
    "SECRETS",
    "SIMULATED_ANNOTATION",
    "STANDARD_RESOURCES",
    "TRAINS",
    "WATCH_HISTORY",
    "ApiFailure",
    "ClusterEmulator",
    "Faults",
    "Obj",
    "ResourceSpec",
    "field_selector_matches",
    "json_patch",
    "label_selector_matches",
    "merge_patch",
    "write_kubeconfig",
]
