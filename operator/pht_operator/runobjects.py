"""The run's objects: token Secret, NetworkPolicy and the locked-down ``batch/v1`` Job.

Pure functions from (Train, policy decision, settings) to manifests, so tests validate them
against the upstream schema and read every security property without a cluster.

Why each property (docs/architecture.md, "Trust boundaries"): the algorithm must not reach DNS, the
network, the Kubernetes API or the store — hence ``dnsPolicy: None`` with a dead resolver, the
station API by IP address, an egress NetworkPolicy to that one port, no service-account token;
restricted pod security with numeric ids and a read-only root, with writable space only in a
size-limited scratch ``emptyDir`` (HOME, TMPDIR, caches) and a memory-backed ``/dev/shm`` that
GPU frameworks need.
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.parse
from dataclasses import dataclass
from typing import Final

from pht_contract import constants
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.quantities import QuantityError, parse_quantity
from pht_contract.trains import TrainResources, TrainSpec
from pht_operator.names import RunNames, run_labels
from pht_operator.settings import OperatorSettings

TOKEN_DIR: Final = "/var/run/pht"
QUERIES_DIR: Final = "/var/run/pht-queries"
SCRATCH_DIR: Final = "/scratch"
#: Nothing listens there inside the pod: name lookups fail fast instead of leaking.
DEAD_RESOLVER: Final = "127.0.0.1"
GPU_RESOURCE: Final = "nvidia.com/gpu"
GPU_PRODUCT_LABEL: Final = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL: Final = "nvidia.com/gpu.memory"
KUEUE_QUEUE_LABEL: Final = "kueue.x-k8s.io/queue-name"
TRAIN_REF_ANNOTATION: Final = f"{constants.API_GROUP}/train"
SPEC_HASH_ANNOTATION: Final = f"{constants.API_GROUP}/spec-hash"


@dataclass(frozen=True)
class RunRequest:
    """Everything a run's manifests depend on."""

    uid: str
    namespace: str
    name: str
    spec: TrainSpec
    spec_hash: str
    policy: StationPolicySpec
    timeout_seconds: int
    names: RunNames


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def build_secret(run: RunRequest, token: str, settings: OperatorSettings) -> Obj:
    """The token (key ``token``) and the named queries (``<name>.rq``), never logged."""
    data = {constants.TOKEN_SECRET_KEY: _b64(token)}
    for query in run.spec.queries or []:
        data[f"{query.name}.rq"] = _b64(query.sparql)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": run.names.secret,
            "namespace": settings.run_namespace,
            "labels": run_labels(run.uid, run.namespace, run.name),
        },
        "type": "Opaque",
        "immutable": True,
        "data": data,
    }


def station_api_address(settings: OperatorSettings) -> str | None:
    """The IP address of ``run_api_url`` (runs have no DNS, so it must be an address)."""
    host = urllib.parse.urlsplit(settings.run_api_url).hostname or ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def build_network_policy(run: RunRequest, settings: OperatorSettings) -> Obj:
    """No ingress; egress only to the station API's internal port (by address and by pod)."""
    port = [{"protocol": "TCP", "port": settings.run_api_port}]
    peers: list[Obj] = []
    if settings.station_api_namespace:
        # The pod labels alone would match any namespace's pods that copy them.
        namespace = {"kubernetes.io/metadata.name": settings.station_api_namespace}
        peers.append(
            {
                "namespaceSelector": {"matchLabels": namespace},
                "podSelector": {"matchLabels": dict(settings.run_api_pod_labels)},
            }
        )
    address = station_api_address(settings)
    if address is not None:
        suffix = "/128" if ":" in address else "/32"
        peers.append({"ipBlock": {"cidr": address + suffix}})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": run.names.network_policy,
            "namespace": settings.run_namespace,
            "labels": run_labels(run.uid, run.namespace, run.name),
        },
        "spec": {
            "podSelector": {"matchLabels": {constants.LABEL_TRAIN_UID: run.uid}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            # No peer known: no egress at all (an empty "to" would mean everywhere).
            "egress": [{"to": peers, "ports": port}] if peers else [],
        },
    }


def build_default_deny(settings: OperatorSettings) -> Obj:
    """The run namespace denies everything unless a run's own policy opens the station API."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "pht-default-deny",
            "namespace": settings.run_namespace,
            "labels": {constants.LABEL_MANAGED_BY: constants.MANAGED_BY},
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _env(run: RunRequest, settings: OperatorSettings) -> list[Obj]:
    env = {
        constants.ENV_API_URL: settings.run_api_url,
        constants.ENV_TOKEN_FILE: f"{TOKEN_DIR}/{constants.TOKEN_SECRET_KEY}",
        constants.ENV_TRAIN_UID: run.uid,
        constants.ENV_TRAIN_NAME: run.name,
        constants.ENV_SCRATCH: SCRATCH_DIR,
        "HOME": SCRATCH_DIR,
        "TMPDIR": SCRATCH_DIR,
        "XDG_CACHE_HOME": f"{SCRATCH_DIR}/.cache",
        "MPLCONFIGDIR": SCRATCH_DIR,
    }
    if run.spec.parameters is not None:
        env[constants.ENV_PARAMETERS] = run.spec.parameters
    if run.spec.queries:
        env[constants.ENV_QUERIES_DIR] = QUERIES_DIR
    return [{"name": key, "value": value} for key, value in env.items()]


def _positive(value: str, default: str, ceiling: str) -> str:
    """``value`` if it is a positive quantity, else the smaller of the default and the
    policy's ceiling: a zero limit on a Job means *no limit*, so one is never written.
    Admission refuses such Trains already (InvalidResources); this is the last line."""
    try:
        if parse_quantity(value) > 0:
            return value
    except QuantityError:
        pass
    return default if parse_quantity(default) <= parse_quantity(ceiling) else ceiling


def _resources(spec: TrainSpec, policy: StationPolicySpec) -> Obj:
    res, lim, defaults = spec.resources, policy.limits, TrainResources()
    amounts = {
        "cpu": _positive(res.cpu, defaults.cpu, lim.max_cpu),
        "memory": _positive(res.memory, defaults.memory, lim.max_memory),
        "ephemeral-storage": _positive(
            res.ephemeral_storage, defaults.ephemeral_storage, lim.max_ephemeral_storage
        ),
    }
    limits: Obj = dict(amounts)
    if res.gpu:
        limits[GPU_RESOURCE] = str(res.gpu)
    return {"requests": dict(amounts), "limits": limits}


def _affinity(run: RunRequest) -> Obj:
    scheduling = run.policy.scheduling
    affinity: Obj = {}
    if scheduling.data_store_pod_labels:
        affinity["podAffinity"] = {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": dict(scheduling.data_store_pod_labels)},
                        "namespaceSelector": {},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    res = run.spec.resources
    if res.gpu:
        expressions: list[Obj] = [
            {"key": key, "operator": "In", "values": [value]}
            for key, value in sorted(scheduling.gpu_node_labels.items())
        ]
        if res.gpu_model:
            expressions.append(
                {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [res.gpu_model]}
            )
        if res.min_gpu_memory_mib:
            expressions.append(
                {
                    "key": GPU_MEMORY_LABEL,
                    "operator": "Gt",
                    "values": [str(res.min_gpu_memory_mib - 1)],
                }
            )
        affinity["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }
    return affinity


def build_job(run: RunRequest, settings: OperatorSettings) -> Obj:
    labels = run_labels(run.uid, run.namespace, run.name)
    scheduling = run.policy.scheduling
    job_labels = dict(labels)
    if scheduling.kueue_queue:
        job_labels[KUEUE_QUEUE_LABEL] = scheduling.kueue_queue
    container: Obj = {
        "name": "train",
        "image": run.spec.image,
        "imagePullPolicy": "IfNotPresent",
        "env": _env(run, settings),
        "resources": _resources(run.spec, run.policy),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": settings.run_uid,
            "runAsGroup": settings.run_gid,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "scratch", "mountPath": SCRATCH_DIR},
            {"name": "shm", "mountPath": "/dev/shm"},
            {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
        ],
        "terminationMessagePolicy": "File",
    }
    if run.spec.command:
        container["command"] = list(run.spec.command)
    if run.spec.args:
        container["args"] = list(run.spec.args)
    volumes: list[Obj] = [
        {"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
        {
            "name": "token",
            "secret": {
                "secretName": run.names.secret,
                "defaultMode": 0o440,
                "items": [{"key": constants.TOKEN_SECRET_KEY, "path": constants.TOKEN_SECRET_KEY}],
            },
        },
    ]
    if run.spec.queries:
        container["volumeMounts"].append(
            {"name": "queries", "mountPath": QUERIES_DIR, "readOnly": True}
        )
        volumes.append(
            {
                "name": "queries",
                "secret": {
                    "secretName": run.names.secret,
                    "defaultMode": 0o440,
                    "items": [
                        {"key": f"{q.name}.rq", "path": f"{q.name}.rq"} for q in run.spec.queries
                    ],
                },
            }
        )
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": [DEAD_RESOLVER], "searches": [], "options": []},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_uid,
            "runAsGroup": settings.run_gid,
            "fsGroup": settings.run_gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    affinity = _affinity(run)
    if affinity:
        pod_spec["affinity"] = affinity
    if run.spec.resources.gpu:
        pod_spec["tolerations"] = [t.wire() for t in scheduling.gpu_tolerations]
    if scheduling.priority_class_name:
        pod_spec["priorityClassName"] = scheduling.priority_class_name
    job_spec: Obj = {
        "backoffLimit": run.spec.retries,
        "activeDeadlineSeconds": run.timeout_seconds,
        "completions": 1,
        "parallelism": 1,
        "template": {
            "metadata": {"labels": labels},
            "spec": pod_spec,
        },
    }
    if scheduling.kueue_queue:
        job_spec["suspend"] = True  # Kueue admits (unsuspends) it when quota allows
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run.names.job,
            "namespace": settings.run_namespace,
            "labels": job_labels,
            "annotations": {
                TRAIN_REF_ANNOTATION: f"{run.namespace}/{run.name}",
                SPEC_HASH_ANNOTATION: run.spec_hash,
            },
        },
        "spec": job_spec,
    }
