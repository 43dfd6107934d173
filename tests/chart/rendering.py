"""Helpers for the chart tests: the real helm and promtool binaries, and the chart rendered once
per profile (rendering is the slow part; every test reads the same output)."""

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pht-station"
TOOLS = ROOT / ".tools" / "bin"
CHECKOV_VENV = ROOT / ".tools" / "checkov-venv"
RELEASE = "station"
NAMESPACE = "pht-system"
#: Every values profile the chart ships for CI: name -> extra values files.
PROFILES: dict[str, list[Path]] = {"default": []} | {
    path.name.removesuffix("-values.yaml"): [path] for path in sorted((CHART / "ci").glob("*.yaml"))
}


def tool(name: str) -> Path:
    """A project tool from .tools/bin (fetched by tools/fetch-tools.sh), else from PATH."""
    candidate = TOOLS / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `bash tools/fetch-tools.sh` (make test does)")
    return Path(found)


def run(args: list[str | Path], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )


#: APIs a current cluster serves beyond those `helm template` assumes on its own (it knows no
#: cluster): Kubernetes 1.37 serves MutatingAdmissionPolicy, so the chart renders it there.
CURRENT_CLUSTER_APIS = ("admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",)


def helm_template(
    values_files: Sequence[Path] = (),
    sets: dict[str, str] | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    api_versions: Sequence[str] = CURRENT_CLUSTER_APIS,
) -> subprocess.CompletedProcess[str]:
    args: list[str | Path] = [tool("helm"), "template", release, CHART, "--namespace", namespace]
    for api_version in api_versions:
        args += ["--api-versions", api_version]
    for path in values_files:
        args += ["-f", path]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return run(args)


@cache
def render_profile(profile: str) -> str:
    result = helm_template(PROFILES[profile])
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders (workload templates and bare pods)."""
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield name, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            yield name, doc["spec"]
