"""Real kubectl against the station in a box's emulated API: get (Table with printer columns),
apply (OpenAPI v3 + server-side validation of our kinds), describe (Events by involvedObject)."""

import asyncio
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml

from pht_contract import constants
from pht_sandbox.emulator import EVENTS, NAMESPACES, TRAINS, write_kubeconfig
from pht_sandbox.emulator.kubectl import KubectlCluster

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".tools" / "bin" / "kubectl"

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="make tools fetches kubectl")


async def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_kubectl_get_apply_describe(tmp_path: Path) -> None:
    cluster = KubectlCluster()
    async with cluster.serving() as url:
        await cluster.create_object(NAMESPACES, {"metadata": {"name": "pht-requests"}})
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, "pht-requests")

        applied = await _kubectl(
            kubeconfig, "apply", "-f", str(REPO / "examples" / "trains" / "kaplan-meier.yaml")
        )
        assert applied.returncode == 0, applied.stderr
        assert "train.pht.health-ai.nl/km-survival-by-stage created" in applied.stdout
        await cluster.patch_object(
            TRAINS,
            "pht-requests",
            "km-survival-by-stage",
            {"status": {"summary": "Running", "progress": {"percent": 40, "stage": "Computing"}}},
            subresource="status",
        )
        got = await _kubectl(kubeconfig, "get", "trains")
        assert got.returncode == 0, got.stderr
        header, row = got.stdout.splitlines()[:2]
        assert header.split() == [
            "NAME",
            "SUMMARY",
            "REASON",
            "GPUS",
            "PROGRESS",
            "AGE",
            "DURATION",
        ]
        assert row.split()[:2] == ["km-survival-by-stage", "Running"] and "40" in row.split()
        wide = await _kubectl(kubeconfig, "get", "tr", "-o", "wide")
        assert "ORGANISATION" in wide.stdout and "maastro" in wide.stdout

        bad = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())
        bad["metadata"]["name"] = "typo"
        bad["spec"]["resources"]["gpus"] = 1
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
        refused = await _kubectl(kubeconfig, "apply", "-f", str(tmp_path / "bad.yaml"))
        assert refused.returncode != 0
        assert "spec.resources.gpus: unknown field" in refused.stderr
        assert cluster.get_object(TRAINS, "pht-requests", "typo") is None

        train = cluster.get_object(TRAINS, "pht-requests", "km-survival-by-stage")
        assert train is not None
        # The emulator plays the requester admission policy: creator recorded, not forgeable.
        annotations = train["metadata"]["annotations"]
        assert annotations["pht.health-ai.nl/requested-by"] == cluster.user
        forged = yaml.safe_load((REPO / "examples" / "trains" / "cohort-summary.yaml").read_text())
        forged["metadata"]["annotations"] = {"pht.health-ai.nl/requested-by": "someone-else"}
        (tmp_path / "forged.yaml").write_text(yaml.safe_dump(forged))
        refused_forgery = await _kubectl(kubeconfig, "apply", "-f", str(tmp_path / "forged.yaml"))
        assert refused_forgery.returncode != 0
        assert "must be your username" in refused_forgery.stderr
        changed = await _kubectl(
            kubeconfig,
            "annotate",
            "--overwrite",
            "train",
            "km-survival-by-stage",
            "pht.health-ai.nl/requested-by=steward@station.local",
        )
        assert changed.returncode != 0 and "cannot be changed" in changed.stderr
        await cluster.create_object(
            EVENTS,
            {
                "metadata": {"name": "km.17f0a", "namespace": "pht-requests"},
                "involvedObject": {
                    "apiVersion": constants.GROUP_VERSION,
                    "kind": "Train",
                    "name": "km-survival-by-stage",
                    "namespace": "pht-requests",
                    "uid": train["metadata"]["uid"],
                },
                "reason": "Admitted",
                "message": "admitted by the station policy",
                "type": "Normal",
                "count": 1,
            },
        )
        described = await _kubectl(kubeconfig, "describe", "train", "km-survival-by-stage")
        assert described.returncode == 0, described.stderr
        assert "admitted by the station policy" in described.stdout


async def test_a_patch_is_judged_by_the_object_it_produces_as_the_api_server_does() -> None:
    """The CRD's CEL transition rules hold for PATCH as for PUT (found by the differential
    test against a real API server: the emulator used to accept a patched spec)."""
    cluster = KubectlCluster()
    async with cluster.serving() as url:
        await cluster.create_object(NAMESPACES, {"metadata": {"name": "pht-requests"}})
        train = yaml.safe_load((REPO / "examples" / "trains" / "kaplan-meier.yaml").read_text())
        await cluster.create_object(TRAINS, train, "pht-requests")
        name = train["metadata"]["name"]
        path = f"{url}/apis/{constants.GROUP_VERSION}/namespaces/pht-requests/trains/{name}"
        async with aiohttp.ClientSession() as http:
            for content_type, patch in (
                ("application/merge-patch+json", {"spec": {"parameters": "{}"}}),
                (
                    "application/json-patch+json",
                    [{"op": "replace", "path": "/spec/parameters", "value": "{}"}],
                ),
            ):
                async with http.patch(
                    path, json=patch, headers={"Content-Type": content_type}
                ) as answer:
                    assert answer.status == 422, content_type
                    assert "the spec is immutable once created, except suspend" in (
                        await answer.text()
                    )
            allowed = {"spec": {"suspend": True}, "metadata": {"labels": {"team": "a"}}}
            async with http.patch(
                path, json=allowed, headers={"Content-Type": "application/merge-patch+json"}
            ) as answer:
                assert answer.status == 200, await answer.text()
