"""A hostile train for the isolation tests: an example train's image plus one layer with a
probe script that tries to reach what it is given and writes one line per attempt.

Targets come from the run's parameters (``PHT_PARAMETERS``: ``{"targets": [[name, kind, host,
port], ...]}``; kinds ``tcp``, ``udp-dns``, ``resolve``); the station API's internal listener
(``PHT_STATION_API_URL``) is always tried, with an HTTP request. Each line is
``probe <name> reached`` or ``probe <name> blocked <reason>``; the script exits 0.
"""

import os
import re
from pathlib import Path

from pht_sandbox import ociimages

ROOT = Path(__file__).resolve().parents[2]
ARCHIVES = Path(os.environ.get("PHT_IMAGES_OUT", ROOT / ".tools" / "images"))
BASE = "cohort-summary"
REFERENCE = "ghcr.io/pht-station/trains/probe:0.1.0"
IMAGE = "ghcr.io/pht-station/trains/probe@sha256:" + "0" * 64
SCRIPT_PATH = "/probe/probe.py"
COMMAND = ["python", SCRIPT_PATH]

SCRIPT = r"""
import json, os, socket, sys, threading, urllib.parse

TIMEOUT = 3.0

def tcp(host, port):
    with socket.create_connection((host, int(port)), timeout=TIMEOUT):
        return "connected"

def http(host, port):
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = s.recv(64)
        if not answer.startswith(b"HTTP/"):
            raise OSError("no HTTP answer")
        return "http"

def udp_dns(host, port):
    query = bytes.fromhex("abcd01000001000000000000076578616d706c65036f72670000010001")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.sendto(query, (host, int(port)))
        s.recvfrom(512)
        return "answered"

def resolve(host, port):
    socket.getaddrinfo(host, int(port))
    return "resolved"

KINDS = {"tcp": tcp, "http": http, "udp-dns": udp_dns, "resolve": resolve}
params = json.loads(os.environ.get("PHT_PARAMETERS") or "{}")
targets = [list(t) for t in params.get("targets", [])]
api = urllib.parse.urlsplit(os.environ.get("PHT_STATION_API_URL", ""))
if api.hostname:
    targets.append(["station-api-internal", "http", api.hostname, api.port])
lines = {}

def attempt(name, kind, host, port):
    try:
        KINDS[kind](host, port)
        lines[name] = f"probe {name} reached"
    except Exception as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        lines[name] = f"probe {name} blocked {reason}"

threads = [threading.Thread(target=attempt, args=t) for t in targets]
for t in threads:
    t.start()
for t in threads:
    t.join()
for name in sorted(lines):
    print(lines[name], flush=True)
"""


def build(out_dir: Path) -> Path:
    """The probe image's archive in ``out_dir`` (``probe.tar``), from the cohort-summary image."""
    base = ARCHIVES / f"{BASE}.tar"
    assert base.is_file(), f"{base}: no image archive; build it with `make images` (needs root)"
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / "probe.tar"
    ociimages.extend(base, archive, {SCRIPT_PATH.lstrip("/"): SCRIPT.encode()}, REFERENCE)
    return archive


def images_with_probe(out_dir: Path) -> Path:
    """A folder with every archive `make images` built and the probe's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for archive in ARCHIVES.glob("*.tar"):
        (out_dir / archive.name).symlink_to(archive)
    build(out_dir)
    return out_dir


def outcomes(log: str) -> dict[str, str]:
    """Probe name → ``reached`` or ``blocked`` from the probe's log."""
    found: dict[str, str] = {}
    for match in re.finditer(r"^probe (\S+) (reached|blocked)", log, re.MULTILINE):
        found[match.group(1)] = match.group(2)
    return found
