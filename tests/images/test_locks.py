"""The station's images install their dependencies from one hash-pinned lock of the whole tree
(requirements/station.lock, written by ``make lock``), then the station's wheel alone.

The lock must agree with pyproject.toml, hold every package the locked packages need (checked
against the installed packages' own metadata: ``make setup`` installs the same lock), and the
Dockerfiles must install from it and nothing else, without the station in a box."""

import importlib.metadata
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .dockerfiles import copy_sources, stages

ROOT = Path(__file__).resolve().parents[2]
STATION_LOCK = ROOT / "requirements" / "station.lock"
BUILD_LOCK = ROOT / "requirements" / "build.lock"
STATION_IMAGES = [ROOT / "operator" / "Dockerfile", ROOT / "station-api" / "Dockerfile"]
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every ``name==version`` entry of a pip-compile lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match["name"])
            assert current not in entries, f"{current} is locked twice"
            entries[current] = (match["version"], [])
        elif line.startswith("--hash=") and current is not None:
            entries[current][1].append(line.removeprefix("--hash=").rstrip(" \\"))
        elif line and not line.startswith("#"):
            current = None
    return entries


def core_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras})


def test_the_lock_pins_every_package_with_hashes() -> None:
    lock = locked(STATION_LOCK)
    assert len(lock) > 20
    for name, (version, hashes) in lock.items():
        assert hashes, f"{name}=={version} has no hash: pip --require-hashes would refuse it"
        assert all(h.startswith("sha256:") and len(h) == 71 for h in hashes), name


def test_every_core_dependency_is_locked_at_the_version_pyproject_pins() -> None:
    lock = locked(STATION_LOCK)
    for requirement in core_requirements():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is not in {STATION_LOCK.name}: run make lock"
        version = lock[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"pyproject.toml wants {requirement}, the lock has {version}: run make lock"
        )


def test_the_lock_holds_the_whole_tree_and_nothing_else() -> None:
    """From the core dependencies down, every requirement each package declares (in the
    installed metadata, which make setup installs from this lock) is locked at a version it
    accepts; and every locked package is reached that way."""
    lock = locked(STATION_LOCK)
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in core_requirements()]
    seen: set[tuple[str, frozenset[str]]] = set()
    problems: list[str] = []
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in lock:
            problems.append(f"{name} is needed but not locked")
            continue
        installed = importlib.metadata.distribution(name)
        if installed.version != lock[name][0]:
            problems.append(
                f"{name}: installed {installed.version}, locked {lock[name][0]} (make setup)"
            )
            continue
        for line in installed.requires or []:
            requirement = Requirement(line)
            if not _applies(requirement, extras):
                continue
            needed = canonicalize_name(requirement.name)
            if needed in lock and not requirement.specifier.contains(
                lock[needed][0], prereleases=True
            ):
                problems.append(f"{name} needs {requirement}, the lock has {lock[needed][0]}")
            todo.append((needed, frozenset(requirement.extras)))
    reached = {name for name, _ in seen}
    problems += [f"{name} is locked but nothing needs it" for name in sorted(set(lock) - reached)]
    assert not problems, "\n".join(problems)


def test_the_build_backend_is_locked_at_the_version_the_tests_use() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    backend = [Requirement(r) for r in project["build-system"]["requires"]]
    tests = {canonicalize_name(Requirement(r).name): Requirement(r) for r in
             project["project"]["optional-dependencies"]["test"]}  # fmt: skip
    build = locked(BUILD_LOCK)
    for requirement in backend:
        name = canonicalize_name(requirement.name)
        assert name in build and requirement.specifier.contains(build[name][0])
        assert str(tests[name].specifier) == f"=={build[name][0]}"
    assert all(hashes for _, hashes in build.values())


def _pip_installs(dockerfile: Path) -> list[list[str]]:
    commands = []
    for stage in stages(dockerfile):
        for run in stage.all("RUN"):
            for part in re.split(r"&&|;", run):
                words = shlex.split(part)
                if len(words) >= 2 and words[0].endswith("pip") and words[1] == "install":
                    commands.append(words)
    return commands


@pytest.mark.parametrize("dockerfile", STATION_IMAGES, ids=lambda p: p.parent.name)
def test_station_images_install_from_the_lock_only(dockerfile: Path) -> None:
    installs = _pip_installs(dockerfile)
    locks = [words[words.index("-r") + 1] for words in installs if "-r" in words]
    assert "requirements/station.lock" in locks
    for words in installs:
        assert "--no-deps" in words, f"{shlex.join(words)}: dependencies come from the lock"
        if "-r" in words:
            assert "--require-hashes" in words, shlex.join(words)
            assert words[words.index("-r") + 1].endswith(".lock"), shlex.join(words)
        else:
            (target,) = [w for w in words[2:] if not w.startswith("-")]
            assert target.endswith(".whl") or target == ".", shlex.join(words)


@pytest.mark.parametrize("dockerfile", STATION_IMAGES, ids=lambda p: p.parent.name)
def test_station_images_leave_the_station_in_a_box_out(dockerfile: Path) -> None:
    for stage in stages(dockerfile):
        for source in copy_sources(stage):
            assert source.rstrip("/") not in (".", "sandbox"), f"COPY {source}"
            assert not source.startswith("sandbox/"), f"COPY {source}"
    text = dockerfile.read_text()
    assert "pht-sandbox" not in text and "-e sandbox" not in text
