"""Trains on a real control plane whose pods the node agent runs under runc: applied by the
researcher, approved by the steward, scheduled by the real scheduler onto the agent's node. A
hostile one tries the API server, the station API's external listener, the operator's metrics,
the internet and DNS, and reaches only the station API's internal listener (its findings are
the pod's log, which the agent keeps in its work directory); one over its memory limit ends
OOMKilled; a pod deleted while it runs leaves nothing behind. About 45 s per test on two cores
(control plane start, chart install, the runs).
"""

import asyncio
import json
import subprocess
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import yaml
from images import probeimage
from realcluster_kube import REPO

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox import podnetwork
from pht_sandbox.demo import POLICY_FILE, run_one_train
from pht_sandbox.nodeagent import RUNTIME_LABEL
from pht_sandbox.realstation import NODE_NAME, RealStation
from pht_sandbox.runcruntime import RUNC_STATE
from pht_sandbox.stations import RUN_NAMESPACE, StationConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def probe_train(
    name: str, command: list[str], parameters: Obj | None = None, memory: str = "2Gi"
) -> Obj:
    """The cohort-summary example Train with the probe image, its own command and memory."""
    train: Obj = yaml.safe_load((REPO / "examples" / "trains" / "cohort-summary.yaml").read_text())
    train["metadata"]["name"] = name
    train["spec"].update(
        image=probeimage.IMAGE,
        command=command,
        resources={"memory": memory},
        purpose="Checks how the node agent's runc runtime contains a train.",
    )
    if parameters is not None:
        train["spec"]["parameters"] = json.dumps(parameters)
    return train


async def _train_pods(station: RealStation, train: str) -> list[Obj]:
    pods = await station.list_objects("v1", "pods", RUN_NAMESPACE)
    return [p for p in pods if f"-{train}-" in p["metadata"]["name"]]


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


def _port(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None, url
    return port


def test_a_hostile_train_on_the_real_control_plane_reaches_only_the_station_api(
    tmp_path: Path,
) -> None:
    images = probeimage.images_with_probe(tmp_path / "images")
    config = StationConfig("isolation", tmp_path / "work", patients=40, policy_file=POLICY_FILE)

    async def scenario() -> tuple[dict[str, str], str, list[dict[str, object]], str]:
        async with RealStation(config, pod_runtime="runc", images_dir=images) as station:
            assert station.plane is not None
            urls = station.urls
            assert urls.internal.startswith(f"http://{podnetwork.LISTENER_ADDRESS}:")
            api_server = _port(station.plane.server)
            targets: list[list[object]] = [
                ["kube-apiserver", "tcp", "127.0.0.1", api_server],
                ["kube-apiserver-listener-address", "tcp", podnetwork.LISTENER_ADDRESS, api_server],
                ["station-api-external", "tcp", "127.0.0.1", _port(urls.external)],
                [
                    "station-api-external-listener-address",
                    "tcp",
                    podnetwork.LISTENER_ADDRESS,
                    _port(urls.external),
                ],
                ["operator-metrics", "tcp", "127.0.0.1", _port(urls.operator_metrics)],
                ["internet-https", "tcp", "1.1.1.1", 443],
                ["internet-dns-udp", "udp-dns", "8.8.8.8", 53],
                ["dns-cluster-name", "resolve", "kubernetes.default.svc", 443],
                ["dns-public-name", "resolve", "example.org", 443],
            ]
            await station.apply(yaml.safe_load(POLICY_FILE.read_text()), constants.POLICY_PLURAL)
            await run_one_train(
                station,
                probe_train("isolation-probe", probeimage.COMMAND, {"targets": targets}),
            )
            node = (await station.kube_request("GET", f"/api/v1/nodes/{NODE_NAME}")).json()
            pods = await station.list_objects("v1", "pods", RUN_NAMESPACE)
            statuses = [p.get("status") or {} for p in pods]
            logs = sorted((config.work_dir / "node").glob("*isolation-probe*.log"))
            assert logs, list((config.work_dir / "node").iterdir())
            log = logs[0].read_text()
            return (
                probeimage.outcomes(log),
                node["metadata"]["labels"][RUNTIME_LABEL],
                statuses,
                log,
            )

    found, runtime_name, statuses, log = asyncio.run(scenario())
    assert runtime_name == "runc"
    container_ids = [
        c.get("containerID", "") for s in statuses for c in s.get("containerStatuses", [])
    ]
    assert container_ids and all(i.startswith("runc://") for i in container_ids), statuses
    assert found.pop("station-api-internal") == "reached", log
    assert found and set(found.values()) == {"blocked"}, log
    assert len(found) == 9, log
    assert podnetwork.leftovers() == []


HOG = "x = []\nwhile True:\n    x.append(bytearray(8 * 1024 * 1024))"
SLEEP = "print('started', flush=True)\nimport time\ntime.sleep(600)"


def test_the_memory_limit_and_a_deleted_pod_under_runc_on_the_real_control_plane(
    tmp_path: Path,
) -> None:
    """A Train over its memory limit ends OOMKilled; a pod deleted while it runs is killed and
    leaves no network namespace, veth, nftables table or runc container behind."""
    images = probeimage.images_with_probe(tmp_path / "images")
    config = StationConfig("limits", tmp_path / "work", patients=40, policy_file=POLICY_FILE)

    async def scenario() -> tuple[Obj, list[str]]:
        async with RealStation(config, pod_runtime="runc", images_dir=images) as station:
            await station.apply(yaml.safe_load(POLICY_FILE.read_text()), constants.POLICY_PLURAL)
            await run_one_train(
                station, probe_train("memory-hog", ["python", "-c", HOG], memory="96Mi")
            )
            (hog,) = await _train_pods(station, "memory-hog")
            sleeper = probe_train("long-sleeper", ["python", "-c", SLEEP])
            await station.apply(sleeper, constants.TRAIN_PLURAL)
            train = await station.get_train("long-sleeper")
            await _until(
                lambda: _awaiting_approval(station, "long-sleeper"), "the approval request"
            )
            await station.approve(train)

            async def running() -> bool:
                pods = await _train_pods(station, "long-sleeper")
                return any((p.get("status") or {}).get("phase") == "Running" for p in pods) and (
                    bool(podnetwork.leftovers())
                )

            await _until(running, "the sleeper's container")
            during = podnetwork.leftovers()
            (pod,) = await _train_pods(station, "long-sleeper")
            meta = pod["metadata"]
            deleted = await station.kube_request(
                "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            )
            assert deleted.status_code in (200, 202), deleted.text

            async def cleaned() -> bool:
                return podnetwork.leftovers() == [] and not _runc_containers()

            await _until(cleaned, "the deleted pod's cleanup", 60.0)
            return hog, during

    hog, during = asyncio.run(scenario())
    (status,) = hog["status"]["containerStatuses"]
    assert status["state"]["terminated"]["reason"] == "OOMKilled", hog["status"]
    assert status["state"]["terminated"]["exitCode"] == 137
    assert any(name.startswith("pht_pod_") for name in during), during
    assert podnetwork.leftovers() == [] and not _runc_containers()


async def _awaiting_approval(station: RealStation, name: str) -> bool:
    train = await station.get_train(name)
    return any(
        c["type"] == "Approved" and c["reason"] == "AwaitingApproval"
        for c in (train.get("status") or {}).get("conditions", [])
    )


def _runc_containers() -> list[str]:
    listed = subprocess.run(
        ["runc", "--root", str(RUNC_STATE), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    return listed.stdout.split()
