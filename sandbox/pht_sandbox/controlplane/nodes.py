"""The simulated nodes: one CPU node and two equal GPU nodes, played by kwok.

GPU nodes carry what a GPU node of a hospital cluster carries: `nvidia.com/gpu` capacity, the
NVIDIA device plugin's taint and GPU feature-discovery labels, so the real scheduler has to
honour the policy's affinity and tolerations to place a run there.
"""

from dataclasses import dataclass, field
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class SimulatedNode:
    name: str
    cpu: str
    memory: str
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)


GPU_LABELS = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}

NODES: tuple[SimulatedNode, ...] = (
    SimulatedNode("cpu-0", cpu="16", memory="64Gi"),
    SimulatedNode("gpu-0", cpu="32", memory="256Gi", gpus=4, labels=GPU_LABELS),
    SimulatedNode("gpu-1", cpu="32", memory="256Gi", gpus=4, labels=GPU_LABELS),
)


def node_object(node: SimulatedNode) -> dict[str, Any]:
    spec: dict[str, Any] = {"providerID": f"kwok://{node.name}"}
    if node.gpus:
        spec["taints"] = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **node.labels,
            },
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
    }


def node_status(node: SimulatedNode) -> dict[str, Any]:
    capacity = {"cpu": node.cpu, "memory": node.memory, "pods": "110", "ephemeral-storage": "500Gi"}
    if node.gpus:
        capacity[GPU_RESOURCE] = str(node.gpus)
    return {"capacity": capacity, "allocatable": dict(capacity)}
