"""A train pod's network: its own namespace that reaches the station API's internal listener
and nothing else.

Each pod gets a network namespace (``ip netns add``), a veth pair whose pod end is ``eth0``
with one /32 address and ONE route, to the listener address, and an nftables table on this
machine that drops everything arriving from the pod's veth except TCP to
``<listener address>:<internal port>``, drops whatever is forwarded from or to it, and lets
this machine send to the pod only the listener's answers. The listener address (default
``10.213.0.1``) lives on this machine's ``lo`` so the station API can bind it; the pod has no
DNS server, no default route and no IPv6. :func:`remove` takes all of it away again.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The station API's internal listener address when pods run in their own network namespace.
LISTENER_ADDRESS: Final = "10.213.0.1"
#: Pods' addresses: one /32 each, from this range.
POD_ADDRESSES: Final = ipaddress.ip_network("10.213.128.0/17")
NETNS_DIR: Final = Path("/run/netns")
ALLOCATION_LOCK: Final = Path("/run/pht-pod-network.lock")
COMMAND_TIMEOUT: Final = 30.0


class PodNetworkError(RuntimeError):
    """A step of setting up a pod's network failed (the command and its error)."""


@dataclass(frozen=True)
class PodNetwork:
    """One pod's network namespace, veth pair and nftables table."""

    pod_id: str
    address: str
    listener: str
    port: int

    @property
    def namespace(self) -> str:
        return f"pht-{self.pod_id}"

    @property
    def namespace_path(self) -> Path:
        return NETNS_DIR / self.namespace

    @property
    def host_interface(self) -> str:
        return f"phth{self.pod_id}"[:15]

    @property
    def pod_interface(self) -> str:
        return f"phtp{self.pod_id}"[:15]

    @property
    def table(self) -> str:
        return f"pht_pod_{self.pod_id}"


def _run(*command: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            list(command),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PodNetworkError(f"{' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        raise PodNetworkError(f"{' '.join(command)}: {done.stderr.strip()[:300]}")
    return done.stdout


def rules(network: PodNetwork) -> str:
    """The pod's nftables table (``nft -f`` syntax)."""
    host, address = network.host_interface, network.address
    return f"""table inet {network.table} {{
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname "{host}" ip saddr {address} ip daddr {network.listener} tcp dport {network.port} accept
    iifname "{host}" drop
  }}
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname "{host}" drop
    oifname "{host}" drop
  }}
  chain output {{
    type filter hook output priority -10; policy accept;
    oifname "{host}" ip saddr {network.listener} ip daddr {address} tcp sport {network.port} accept
    oifname "{host}" drop
  }}
}}
"""


def problem() -> str | None:
    """Why pod networks cannot be made here (``None`` when they can): tries each step once."""
    if os.geteuid() != 0:
        return f"pod networks need root (running as uid {os.geteuid()})"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            package = "iproute2" if tool == "ip" else "nftables"
            return f"no '{tool}' on PATH (apt-get install {package})"
    probe = PodNetwork(f"chk{os.getpid() % 100000}", "10.213.127.254", LISTENER_ADDRESS, 9)
    try:
        _create(probe)
    except PodNetworkError as exc:
        return f"making a pod network failed: {exc}"
    finally:
        remove(probe)
    return None


def ensure_listener_address(address: str = LISTENER_ADDRESS) -> None:
    """``address``/32 on this machine's ``lo`` (kept when the station stops: other stations on
    this machine may listen on it)."""
    shown = _run("ip", "-4", "-o", "addr", "show", "dev", "lo")
    if f" {address}/" not in shown:
        with contextlib.suppress(PodNetworkError):
            _run("ip", "addr", "add", f"{address}/32", "dev", "lo")
        if f" {address}/" not in _run("ip", "-4", "-o", "addr", "show", "dev", "lo"):
            raise PodNetworkError(f"could not put {address} on lo")


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    with ALLOCATION_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def addresses_in_use() -> set[str]:
    routes = _run("ip", "-4", "-o", "route", "show", "root", str(POD_ADDRESSES))
    return {line.split()[0].split("/")[0] for line in routes.splitlines() if line.strip()}


def create(pod_id: str, listener: str, port: int) -> PodNetwork:
    """A new network for pod ``pod_id`` (a short unique hex id) that reaches only
    ``listener:port``; on failure nothing is left behind."""
    with _allocation_lock():
        used = addresses_in_use()
        free = next(
            (str(a) for a in POD_ADDRESSES.hosts() if str(a) not in used and a.packed[3] != 0),
            None,
        )
        if free is None:
            raise PodNetworkError(f"no free pod address in {POD_ADDRESSES}")
        network = PodNetwork(pod_id, free, listener, port)
        try:
            _create(network)
        except PodNetworkError:
            remove(network)
            raise
    return network


def _create(network: PodNetwork) -> None:
    ns, host, pod = network.namespace, network.host_interface, network.pod_interface
    _run("nft", "-f", "-", stdin=rules(network))  # the walls first, then the door
    _run("ip", "netns", "add", ns)
    _run("ip", "link", "add", host, "type", "veth", "peer", "name", pod)
    _run("ip", "link", "set", pod, "netns", ns)
    _run("ip", "-n", ns, "link", "set", pod, "name", "eth0")
    _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    _run("ip", "-n", ns, "addr", "add", f"{network.address}/32", "dev", "eth0")
    _run("ip", "-n", ns, "link", "set", "lo", "up")
    _run("ip", "-n", ns, "link", "set", "eth0", "up")
    _run("ip", "-n", ns, "route", "add", f"{network.listener}/32", "dev", "eth0")
    _run("sysctl", "-qw", f"net.ipv6.conf.{host}.disable_ipv6=1")
    _run("ip", "link", "set", host, "up")
    _run("ip", "route", "add", f"{network.address}/32", "dev", host)


def remove(network: PodNetwork) -> None:
    """The pod's namespace, veth pair, route and table gone (whatever of them exists)."""
    for command in (
        ("ip", "link", "del", network.host_interface),
        ("ip", "netns", "del", network.namespace),
        ("nft", "delete", "table", "inet", network.table),
    ):
        with contextlib.suppress(PodNetworkError):
            _run(*command)


def leftovers() -> list[str]:
    """Pod namespaces, veths and tables that exist now (for checks after a pod ended)."""
    found = [n.split()[0] for n in _run("ip", "netns", "list").splitlines() if n.startswith("pht-")]
    for line in _run("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(("phth", "phtp")):
            found.append(name)
    for line in _run("nft", "list", "tables").splitlines():
        if " pht_pod_" in line:
            found.append(line.split()[-1])
    return found
