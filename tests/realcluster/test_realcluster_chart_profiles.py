"""The chart's example profiles (`charts/pht-station/ci/`) installed for real, each as its own
release beside the default one, as a hospital with that setup would install it.

Profiles whose dependencies this control plane does not have are not installed: monitoring
(the Prometheus operator's ServiceMonitor and PrometheusRule kinds) and gpu-kueue (Kueue's
kinds). Their rendering is checked by the chart tests.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from realcluster_kube import CHART, run

from pht_sandbox.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.slow

#: Each profile's release, namespaces and internal address, apart from every other release.
PROFILES = {
    "external-store": "10.96.0.91",
    "ingress": "10.96.0.92",
}


def names(profile: str, address: str) -> dict[str, Any]:
    return {
        "station": {"createNamespaces": True, "namespaces": [f"prof-{profile}-requests"]},
        "runNamespace": {"name": f"prof-{profile}-runs"},
        "stationApi": {"service": {"internal": {"clusterIP": address}}},
    }


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_an_example_profile_installs_and_every_object_is_admitted(
    control_plane: ControlPlane, tmp_path: Path, profile: str
) -> None:
    overrides = tmp_path / "names.yaml"
    overrides.write_text(yaml.safe_dump(names(profile, PROFILES[profile])))
    release, namespace = f"prof-{profile}", f"prof-{profile}-system"
    admin = control_plane.kubeconfigs["admin"]
    if profile == "external-store":
        # The hospital's store runs in a namespace of its own, which exists before the station:
        # the chart puts the NetworkPolicy admitting the station API into it.
        with control_plane.client() as client:
            made = client.post("/api/v1/namespaces", json={"metadata": {"name": "clinical-data"}})
            assert made.status_code in (201, 409), made.text
    installed = run(
        "helm",
        [
            "install", release, str(CHART), "-n", namespace, "--create-namespace",
            "-f", str(CHART / "ci" / f"{profile}-values.yaml"), "-f", str(overrides),
        ],
        admin,
        timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    manifest = run("helm", ["get", "manifest", release, "-n", namespace], admin)
    objects = [d for d in yaml.safe_load_all(manifest.stdout) if d]
    assert objects
    # Every object the release rendered is there, read back from the server.
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        args = ["get", obj["kind"], obj["metadata"]["name"], "-o", "json"]
        found = run("kubectl", [*args, *(["-n", ns] if ns else [])], admin)
        assert found.returncode == 0, f"{obj['kind']}/{obj['metadata']['name']}: {found.stderr}"
        assert json.loads(found.stdout)["metadata"]["name"] == obj["metadata"]["name"]
    kinds = {obj["kind"] for obj in objects}
    if profile == "ingress":
        assert "Ingress" in kinds
    if profile == "external-store":
        policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
        assert any("clinical-data" in json.dumps(p) for p in policies)
