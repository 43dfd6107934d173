"""The images `make images` builds (tools/images/build.sh), inspected as OCI archives and run.

Each archive must match its Dockerfile (numeric non-root user, entrypoint, exposed ports), hold
no compiler, no pip and, for the operator and the station API, no station-in-a-box code, stay
within a size bound, and start under Debian's `runc` as uid 65532 with a read-only root
filesystem, no capabilities and no network. A missing archive is an error with the command that
builds it, never a skip: `make test` builds the images (cached) before it runs the tests.
Cost: about 20 s per image to unpack and run, on top of the build (cached by its inputs).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from . import oci
from .dockerfiles import stages

ROOT = Path(__file__).resolve().parents[2]
ARCHIVES = Path(os.environ.get("PHT_IMAGES_OUT", ROOT / ".tools" / "images"))
STATION_IMAGES = {"operator": ROOT / "operator", "station-api": ROOT / "station-api"}
TRAIN_IMAGES = {
    name: ROOT / "trains" / "examples" / name
    for name in subprocess.run(
        ["bash", str(ROOT / "tools" / "images" / "build.sh"), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if name not in STATION_IMAGES
}
IMAGES = {**STATION_IMAGES, **TRAIN_IMAGES}
# Unpacked bytes of all layers, about 15% above what `make images` builds today: 316 MB
# (operator, station API), 158 MB (cohort-summary, kaplan-meier: the SDK only), 230 MB
# (federated-logreg, with numpy); the Debian base with Python is 153 MB of each.
SIZE_LIMIT = {"operator": 360_000_000, "station-api": 360_000_000, "federated-logreg": 265_000_000}
TRAIN_SIZE_LIMIT = 185_000_000
# Paths a final image must not hold: compilers, pip, and (station images) the station in a box.
COMPILER = re.compile(
    r"^usr/(local/)?bin/(x86_64-linux-gnu-)?(gcc|cc|c\+\+|g\+\+|clang|cpp|ld|as)(-\d+)?$"
)
PIP = re.compile(r"(^|/)(bin/pip[\d.]*|(site|dist)-packages/pip)(/|$)")
SANDBOX = re.compile(r"(^|/)pht_sandbox(/|$|-)")
RUN_UID = 65532


def _archive(name: str) -> Path:
    path = ARCHIVES / f"{name}.tar"
    assert path.is_file(), f"{path}: no image archive; build it with `make images` (needs root)"
    return path


_read: dict[str, oci.Image] = {}


def _image(name: str) -> oci.Image:
    if name not in _read:
        _read[name] = oci.read(_archive(name))
    return _read[name]


def violations(image: oci.Image, station: bool) -> list[str]:
    """What is wrong with a built image, one line each (empty when it is fine)."""
    found = []
    user = str(image.runtime.get("User", ""))
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or int(uid) == 0 or (gid and (not gid.isdigit() or int(gid) == 0)):
        found.append(f"user {user!r}: not a numeric non-root uid:gid")
    for path in sorted(image.paths):
        if COMPILER.search(path):
            found.append(f"{path}: a compiler")
        if PIP.search(path):
            found.append(f"{path}: pip")
        if station and SANDBOX.search(path):
            found.append(f"{path}: station-in-a-box code")
    return found


def _final_stage(directory: Path) -> dict[str, list[str]]:
    final = stages(directory / "Dockerfile")[-1]
    return {key: final.all(key) for key in ("USER", "ENTRYPOINT", "EXPOSE", "WORKDIR")}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_image_is_configured_as_its_dockerfile_says(name: str) -> None:
    image = _image(name)
    dockerfile = _final_stage(IMAGES[name])
    assert image.runtime.get("User") == dockerfile["USER"][-1]
    assert image.runtime.get("Entrypoint") == json.loads(dockerfile["ENTRYPOINT"][-1])
    expected_ports = {
        port if "/" in port else f"{port}/tcp"
        for line in dockerfile["EXPOSE"]
        for port in line.split()
    }
    assert set(image.runtime.get("ExposedPorts") or {}) == expected_ports
    if dockerfile["WORKDIR"]:
        assert image.runtime.get("WorkingDir") == dockerfile["WORKDIR"][-1]
    if name in STATION_IMAGES:
        assert image.runtime["Entrypoint"] == ["pht"]
        assert expected_ports, "the station's images expose their listeners"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_the_image_holds_no_compiler_pip_or_sandbox_and_stays_small(name: str) -> None:
    image = _image(name)
    assert violations(image, station=name in STATION_IMAGES) == []
    if name in STATION_IMAGES:
        assert "opt/venv/bin/pht" in image.paths
        packages = {
            path.partition("/site-packages/")[2].split("/")[0]
            for path in image.paths
            if path.startswith("opt/venv/lib/python3") and "/site-packages/" in path
        }
        assert {"pht_contract", "pht_operator", "pht_station_api", "pht_cli"} <= packages
    else:
        module = IMAGES[name].name.replace("-", "_")
        assert f"app/{module}/__main__.py" in image.paths
        assert any("/site-packages/pht_train/" in p for p in image.paths)
    limit = SIZE_LIMIT.get(name, TRAIN_SIZE_LIMIT)
    size = f"{name}: {image.unpacked_bytes / 1e6:.0f} MB unpacked (limit {limit / 1e6:.0f} MB)"
    assert image.unpacked_bytes <= limit, size


def test_the_checks_catch_a_bad_image(tmp_path: Path) -> None:
    """Guards the checks above with a small archive built here: root user, gcc, pip and the
    station in a box; a later layer's whiteout removes a file an earlier one added."""
    blobs: dict[str, bytes] = {}

    def add(content: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        blobs[digest] = content
        return {"digest": digest, "size": len(content)}

    first = oci.layer(
        {
            "usr/bin/gcc-12": b"",
            "opt/venv/lib/python3.11/site-packages/pip/__init__.py": b"",
            "opt/venv/lib/python3.11/site-packages/pht_sandbox/__init__.py": b"x" * 10,
            "secret/notes": b"gone",
        }
    )
    second = oci.layer({"secret/.wh.notes": b""})
    config = add(json.dumps({"config": {"User": "0", "Entrypoint": ["pht"]}}).encode())
    manifest = add(json.dumps({"config": config, "layers": [add(first), add(second)]}).encode())
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as out:
        for name, content in {
            "index.json": json.dumps({"manifests": [manifest]}).encode(),
            **{f"blobs/sha256/{d.split(':')[1]}": c for d, c in blobs.items()},
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            out.addfile(info, BytesIO(content))
    image = oci.read(archive)
    assert "secret/notes" not in image.paths
    assert image.unpacked_bytes == 10
    found = violations(image, station=True)
    assert any("user '0'" in line for line in found)
    assert any(line == "usr/bin/gcc-12: a compiler" for line in found)
    assert any(": pip" in line for line in found)
    assert any("station-in-a-box" in line for line in found)
    assert violations(image, station=False) == [line for line in found if "station" not in line]


def _runc() -> str:
    found = shutil.which("runc")
    assert found, "no 'runc' on PATH: `make tools` installs Debian's package (apt-get install runc)"
    return found


def _run_in_runc(
    name: str, tmp_path: Path, args: list[str], entrypoint: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert os.geteuid() == 0, "running images with runc needs root here"
    runc = _runc()
    image = _image(name)
    bundle = tmp_path / "bundle"
    oci.unpack(_archive(name), bundle / "rootfs")
    subprocess.run([runc, "spec", "--bundle", str(bundle)], check=True, timeout=30)
    spec = json.loads((bundle / "config.json").read_text())
    process = spec["process"]
    process["terminal"] = False
    process["args"] = (image.runtime["Entrypoint"] if entrypoint is None else entrypoint) + args
    process["env"] = image.runtime.get("Env", [])
    process["cwd"] = image.runtime.get("WorkingDir") or "/"
    process["user"] = {"uid": RUN_UID, "gid": RUN_UID}
    process["noNewPrivileges"] = True
    process["capabilities"] = {key: [] for key in process["capabilities"]}
    spec["root"] = {"path": "rootfs", "readonly": True}
    # runc's default spec has its own network namespace with no interface: no network at all.
    assert {"type": "network"} in spec["linux"]["namespaces"]
    (bundle / "config.json").write_text(json.dumps(spec))
    state = tmp_path / "state"
    return subprocess.run(
        [runc, "--root", str(state), "run", "--bundle", str(bundle), f"pht-{name}-{os.getpid()}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(STATION_IMAGES))
def test_the_station_image_starts_under_runc_as_another_uid(name: str, tmp_path: Path) -> None:
    result = _run_in_runc(name, tmp_path, ["--help"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage" in result.stdout.lower()
    subcommand = json.loads(_final_stage(IMAGES[name])["ENTRYPOINT"][-1])
    assert subcommand == ["pht"]
    assert ("operator" if name == "operator" else "api") in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(TRAIN_IMAGES))
def test_the_train_image_starts_under_runc_and_asks_for_its_station(
    name: str, tmp_path: Path
) -> None:
    """A train takes no arguments: outside a station its entrypoint must get as far as the SDK's
    own refusal (exit 3, InvalidEnvironment), which proves Python, the SDK and the train load."""
    result = _run_in_runc(name, tmp_path, [])
    assert result.returncode == 3, result.stderr[-3000:]
    assert "pht-train-failure: InvalidEnvironment" in result.stderr
    assert "Traceback" not in result.stderr


PROBE = """
import os, socket
print("uid", os.getuid(), os.getgid())
for path in ("/probe", "/opt/venv/probe", "/app/probe"):
    try:
        open(path, "w").close()
        print("wrote", path)
    except OSError as error:
        print("refused", path, error.strerror)
try:
    socket.create_connection(("1.1.1.1", 443), timeout=5)
    print("connected")
except OSError as error:
    print("offline", error.strerror)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_runner_really_applies_uid_read_only_root_and_no_network(tmp_path: Path) -> None:
    """What the runs above rely on: the process is uid 65532, can write nowhere on the image's
    root filesystem, and has no route out."""
    name = sorted(TRAIN_IMAGES)[0]
    result = _run_in_runc(name, tmp_path, ["-c", PROBE], entrypoint=["python"])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert f"uid {RUN_UID} {RUN_UID}" in lines
    for path in ("/probe", "/opt/venv/probe", "/app/probe"):
        assert f"refused {path} Read-only file system" in lines
    assert "connected" not in lines
    assert any(line.startswith("offline") for line in lines)
