"""kwok's configuration: its own fast node and pod stages, plus a failure stage of ours.

The default stages ship in kwok's Go module and are copied next to the binary by the build;
they are read from there, never kept in this repository. A pod annotated
`pht.health-ai.nl/simulated-outcome: Failed` ends Failed with exit code 1 instead of Succeeded,
so tests can drive a Job to its failure path on a real Job controller. The operator's run pods
cannot carry that annotation (nothing of the Train reaches the pod template but its labels), so
a run pod whose `pht.health-ai.nl/train-name` label is one of FAILING_TRAIN_NAMES fails the same
way, and one whose Train is one of LONG_RUNNING_TRAIN_NAMES keeps running until deleted: a
test names its Train accordingly. Bare pods that are Helm
test hooks (`helm test`) complete as well, as their one-shot checks would; other bare pods keep
running like a server.
"""

from pathlib import Path
from typing import Any

import yaml

OUTCOME_ANNOTATION = "pht.health-ai.nl/simulated-outcome"
FAILED = "Failed"
TRAIN_NAME_LABEL = "pht.health-ai.nl/train-name"
#: Trains whose run pods kwok fails (exit 1), whatever they run.
FAILING_TRAIN_NAMES = ("simulated-failure",)
#: Trains whose run pods kwok never completes (they run until deleted).
LONG_RUNNING_TRAIN_NAMES = ("simulated-long-run",)
_TRAIN_NAME_KEY = f'.metadata.labels["{TRAIN_NAME_LABEL}"]'


def _terminated_status(exit_code: int, reason: str, phase: str) -> str:
    """kwok's status template for a pod whose containers all ended with ``exit_code``."""
    return (
        "{{ $now := Now }}\n"
        "containerStatuses:\n"
        "{{ range .spec.containers }}\n"
        "- name: {{ .name | Quote }}\n"
        "  image: {{ .image | Quote }}\n"
        "  ready: false\n"
        "  restartCount: 0\n"
        "  started: false\n"
        "  state:\n"
        "    terminated:\n"
        f"      exitCode: {exit_code}\n"
        f"      reason: {reason}\n"
        "      startedAt: {{ $now | Quote }}\n"
        "      finishedAt: {{ $now | Quote }}\n"
        "{{ end }}\n"
        f"phase: {phase}\n"
    )


_FAILED_STATUS = _terminated_status(1, "Error", "Failed")


def failure_stage(name: str = "pht-pod-failed", by_train_name: bool = False) -> dict[str, Any]:
    selector: dict[str, Any] = {
        "matchExpressions": [
            {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
            {"key": ".status.phase", "operator": "In", "values": ["Running"]},
        ],
    }
    if by_train_name:
        selector["matchExpressions"].append(
            {"key": _TRAIN_NAME_KEY, "operator": "In", "values": list(FAILING_TRAIN_NAMES)}
        )
    else:
        selector["matchAnnotations"] = {OUTCOME_ANNOTATION: FAILED}
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": selector,
            "delay": {"durationMilliseconds": 300},
            "next": {"statusTemplate": _FAILED_STATUS},
        },
    }


_SUCCEEDED_STATUS = _terminated_status(0, "Completed", "Succeeded")


def helm_test_stage() -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pht-helm-test-complete"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchAnnotations": {"helm.sh/hook": "test"},
                "matchExpressions": [
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                ],
            },
            "delay": {"durationMilliseconds": 300},
            "next": {"statusTemplate": _SUCCEEDED_STATUS},
        },
    }


def _exclude_failures(stage: dict[str, Any]) -> dict[str, Any]:
    """The success stage must not race the failure stage for annotated pods."""
    if stage.get("metadata", {}).get("name") == "pod-complete":
        selector = stage["spec"].setdefault("selector", {})
        selector.setdefault("matchExpressions", []).extend(
            [
                {
                    "key": f'.metadata.annotations["{OUTCOME_ANNOTATION}"]',
                    "operator": "DoesNotExist",
                },
                {
                    "key": _TRAIN_NAME_KEY,
                    "operator": "NotIn",
                    "values": [*FAILING_TRAIN_NAMES, *LONG_RUNNING_TRAIN_NAMES],
                },
            ]
        )
    return stage


def write_kwok_config(stages_dir: Path, target: Path) -> Path:
    documents: list[dict[str, Any]] = []
    for path in sorted(stages_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Stage":
                documents.append(_exclude_failures(doc))
    if not documents:
        raise FileNotFoundError(f"no kwok stages in {stages_dir}")
    documents += [
        failure_stage(),
        failure_stage("pht-run-pod-failed", by_train_name=True),
        helm_test_stage(),
    ]
    target.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return target
