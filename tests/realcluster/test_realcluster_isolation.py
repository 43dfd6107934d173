"""A hostile Train on a real control plane, its pod run by the node agent under runc: applied by
the researcher, approved by the steward, scheduled by the real scheduler onto the agent's node,
it tries the API server, the station API's external listener, the operator's metrics, the
internet and DNS, and reaches only the station API's internal listener. Its findings are the
pod's log, which the agent keeps in its work directory. About 120 s on two cores (control plane
start, chart install, one run).
"""

import asyncio
import json
import urllib.parse
from pathlib import Path

import pytest
import yaml
from images import probeimage
from realcluster_kube import REPO

from pht_contract import constants
from pht_sandbox import podnetwork
from pht_sandbox.demo import POLICY_FILE, run_one_train
from pht_sandbox.nodeagent import RUNTIME_LABEL
from pht_sandbox.realstation import NODE_NAME, RealStation
from pht_sandbox.stations import RUN_NAMESPACE, StationConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def probe_train(targets: list[list[object]]) -> dict[str, object]:
    train = yaml.safe_load((REPO / "examples" / "trains" / "cohort-summary.yaml").read_text())
    train["metadata"]["name"] = "isolation-probe"
    spec = train["spec"]
    spec.update(
        image=probeimage.IMAGE,
        command=probeimage.COMMAND,
        parameters=json.dumps({"targets": targets}),
        purpose="Checks that a train pod reaches only the station API.",
    )
    return train


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
            await station.apply(
                json.loads(json.dumps(yaml.safe_load(POLICY_FILE.read_text()))),
                constants.POLICY_PLURAL,
            )
            await run_one_train(station, probe_train(targets))
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
