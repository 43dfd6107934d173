"""A hostile train under the runc runtime tries to reach everything on and around this machine
and reaches only the station API's internal listener: no DNS, no internet, not the host's
loopback or its other addresses, not another port on the listener's address, not another
running train's pod. Each target is first shown reachable from this machine, so a "blocked"
is the pod's isolation, not a dead service. The same probe as a real Train on a real control
plane: tests/realcluster/test_realcluster_isolation.py. About 15 s (probes time out in 3 s).
"""

import asyncio
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from images import probeimage
from test_runcruntime import launch, nothing_left, pod

from pht_sandbox import podnetwork
from pht_sandbox.realstation import ROOTFS_CACHE
from pht_sandbox.runcruntime import RuncRuntime

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

POD_PORT = 8080


class Listener:
    """A TCP server on ``host`` that answers every connection with an HTTP status line."""

    def __init__(self, host: str) -> None:
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, 0))
        self.socket.listen(16)
        self.port: int = self.socket.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            with connection:
                connection.sendall(b"HTTP/1.0 200 OK\r\n\r\n")

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listeners() -> Iterator[dict[str, Listener]]:
    podnetwork.ensure_listener_address()
    made = {
        "api": Listener(podnetwork.LISTENER_ADDRESS),  # the station API's internal listener
        "any": Listener("0.0.0.0"),  # a service on every address of this machine
        "loopback": Listener("127.0.0.1"),
    }
    yield made
    for listener in made.values():
        listener.close()


def host_address() -> str:
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    ).stdout
    for line in shown.splitlines():
        address = line.split()[3].split("/")[0]
        if line.split()[1] != "lo":
            return address
    raise AssertionError(f"this machine has no global IPv4 address besides lo: {shown}")


def reachable_from_here(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def pod_addresses() -> set[str]:
    return podnetwork.addresses_in_use()


SLEEPER = f"""
import socket, time
s = socket.socket(); s.bind(("0.0.0.0", {POD_PORT})); s.listen(4)
print("listening", flush=True)
s.settimeout(60)
try:
    s.accept(); print("accepted a connection", flush=True)
except OSError:
    pass
"""


def test_a_hostile_train_reaches_only_the_station_apis_internal_listener(
    tmp_path: Path, listeners: dict[str, Listener]
) -> None:
    images = probeimage.images_with_probe(tmp_path / "images")
    api, other = listeners["api"], listeners["any"]
    host = host_address()
    runtime = RuncRuntime(images, ROOTFS_CACHE, api_port=api.port, say=print)
    targets = [
        ["listener-other-port", "tcp", podnetwork.LISTENER_ADDRESS, other.port],
        ["host-loopback", "tcp", "127.0.0.1", listeners["loopback"].port],
        ["host-loopback-any", "tcp", "127.0.0.1", other.port],
        ["host-address", "tcp", host, other.port],
        ["internet-https", "tcp", "1.1.1.1", 443],
        ["internet-dns-udp", "udp-dns", "8.8.8.8", 53],
        ["dns-cluster-name", "resolve", "kubernetes.default.svc", 443],
        ["dns-public-name", "resolve", "example.org", 443],
    ]
    for name, kind, address, port in targets:
        if kind == "tcp" and not name.startswith("internet"):
            assert reachable_from_here(str(address), int(port)), name

    async def scenario() -> tuple[int | None, str, bool]:
        before = pod_addresses()
        sleeper = launch(
            pod(["python", "-c", SLEEPER], image=probeimage.IMAGE), tmp_path / "sleeper"
        )
        sleeping = asyncio.create_task(runtime.run(sleeper))
        for _ in range(300):
            await asyncio.sleep(0.1)
            if sleeper.log.exists() and "listening" in sleeper.log.read_text():
                break
        (neighbour,) = pod_addresses() - before
        from_host = await asyncio.to_thread(reachable_from_here, neighbour, POD_PORT)
        spec = pod(probeimage.COMMAND, image=probeimage.IMAGE)
        parameters = {"targets": [*targets, ["other-pod", "tcp", neighbour, POD_PORT]]}
        spec["containers"][0]["env"] += [
            {"name": "PHT_PARAMETERS", "value": json.dumps(parameters)},
            {
                "name": "PHT_STATION_API_URL",
                "value": f"http://{podnetwork.LISTENER_ADDRESS}:{api.port}",
            },
        ]
        probe = launch(spec, tmp_path / "probe")
        code = await runtime.run(probe)
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        return code, probe.log.read_text(), from_host

    code, log, from_host = asyncio.run(scenario())
    assert code == 0, log
    found = probeimage.outcomes(log)
    expected = {name: "blocked" for name, *_ in targets}
    expected["other-pod"] = "blocked"
    expected["station-api-internal"] = "reached"
    assert found == expected, log
    assert api.accepted >= 1
    assert not from_host  # this machine cannot open connections into a pod either
    assert other.accepted == 3  # only this test's own reachability checks got through
    nothing_left()
