"""Trains for the end-to-end runs of tests/realcluster/test_realcluster_trains.py, and what a
user can see of each run: the Train's last conditions, the released result, the Events about
it, what is left of the run in the run namespace and at the station API.

Every case goes as a user takes it: the researcher applies the Train, a data steward approves it
with ``pht approve``, the steward releases a held result with ``pht release``; a cluster admin
deletes Trains (neither role may). The train "made to run long" is an author's own: a package
written next to the test for local processes (as an author tries a train before building its
image), and the Kaplan–Meier image with its module replaced for runc containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox import ociimages
from pht_sandbox.bundledtrains import IMAGE_PREFIX, BundledTrain, image_repository
from pht_sandbox.demo import held_for_steward, steward_cli
from pht_sandbox.stations import REQUEST_NAMESPACE, RUN_NAMESPACE, LocalStation

REPO: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = REPO / "examples" / "trains"
POLICY_FILE: Final = REPO / "examples" / "policies" / "station-policy.yaml"
IMAGE_ARCHIVES: Final = Path(os.environ.get("PHT_IMAGES_OUT", REPO / ".tools" / "images"))
#: Seconds one step of a run (admission, the run, the gate) may take on a loaded machine.
STEP_TIMEOUT: Final = 150.0
RELEASE_REASON: Final = "reviewed: aggregate counts and model statistics, no row-level data"
#: The deadline of the Train killed by it: long enough for its pod to be scheduled and its
#: container started while the other Trains' pods fill the node (on a loaded machine that took
#: more than 20 s), short for a test.
DEADLINE_SECONDS: Final = 45
#: The run namespace's kinds a run may leave behind.
RUN_KINDS: Final = {
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
}
TRAINS_PATH: Final = (
    f"/apis/{constants.GROUP_VERSION}/namespaces/{REQUEST_NAMESPACE}/{constants.TRAIN_PLURAL}"
)
APPROVALS_PATH: Final = (
    f"/apis/{constants.GROUP_VERSION}/namespaces/{REQUEST_NAMESPACE}/{constants.APPROVAL_PLURAL}"
)
EVENTS_PATH: Final = f"/apis/events.k8s.io/v1/namespaces/{REQUEST_NAMESPACE}/events"

#: An author's train that queries, says it is computing, and then takes far longer than any
#: deadline a test gives it.
SLOW_MODULE: Final = "slow_analysis"
SLOW_SOURCE: Final = """\
import time

from pht_train import Stage, run


def analyse(train):
    train.query("survival")
    train.progress(50, Stage.COMPUTING)
    time.sleep(3600)


run(analyse)
"""


def slow_image(repository: str) -> str:
    return f"{IMAGE_PREFIX}{repository}:0.1.0@sha256:{'5' * 64}"


def write_slow_train(root: Path, repository: str) -> BundledTrain:
    """The slow train as a package of its own under ``root`` (``python -m slow_analysis``),
    to run for the image ``ghcr.io/pht-station/trains/<repository>``."""
    package = root / repository / SLOW_MODULE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(SLOW_SOURCE)
    return BundledTrain(repository, root / repository, SLOW_MODULE)


def example(file: str) -> Obj:
    document: Obj = yaml.safe_load((EXAMPLES / file).read_text())
    return document


def example_policy() -> Obj:
    """The example StationPolicy, with room for every Train of the module at once."""
    policy: Obj = yaml.safe_load(POLICY_FILE.read_text())
    policy["spec"]["limits"]["maxConcurrentTrains"] = 8
    return policy


def renamed(document: Obj, name: str, **spec: Any) -> Obj:
    document = copy.deepcopy(document)
    document["metadata"]["name"] = name
    document["metadata"]["namespace"] = REQUEST_NAMESPACE
    document["spec"].update(spec)
    return document


def failing_parameters() -> Obj:
    """The Kaplan–Meier train asked to group by something it does not know: it exits 3."""
    return renamed(
        example("kaplan-meier.yaml"),
        "km-unknown-grouping",
        parameters=json.dumps({"groupBy": "eyeColour"}),
    )


def tiny_cohort() -> Obj:
    """The Kaplan–Meier train on three patients: the gate blocks it (minimum cohort 10)."""
    document = renamed(example("kaplan-meier.yaml"), "km-three-patients")
    query = document["spec"]["queries"][0]
    query["sparql"] = query["sparql"].rstrip() + " LIMIT 3\n"
    return document


def slow(name: str, timeout_seconds: int) -> Obj:
    """The slow train (its image named after the Train) with a deadline."""
    return renamed(
        example("kaplan-meier.yaml"),
        name,
        image=slow_image(name),
        parameters="{}",
        timeoutSeconds=timeout_seconds,
        resources={"cpu": "250m", "memory": "512Mi"},
    )


@dataclass(frozen=True)
class Case:
    manifest: Obj
    #: Delete the Train (as a cluster admin) once its run is running.
    delete_while_running: bool = False
    #: The run is the author's slow train (not one of the example trains).
    slow: bool = False

    @property
    def name(self) -> str:
        name: str = self.manifest["metadata"]["name"]
        return name


CASES: Final = (
    Case(renamed(example("cohort-summary.yaml"), "cohort-summary")),
    Case(renamed(example("federated-logreg.yaml"), "federated-logreg-round-1")),
    Case(failing_parameters()),
    Case(slow("slow-past-deadline", DEADLINE_SECONDS), slow=True),
    Case(tiny_cohort()),
    Case(slow("slow-deleted-while-running", 600), delete_while_running=True, slow=True),
)


@dataclass
class Ending:
    """What a user can see of one Train's run, at its end and after it was deleted."""

    summary: str | None = None
    #: (type, status, reason, message) of each condition of the Train at its end.
    conditions: list[tuple[str, str, str, str]] = field(default_factory=list)
    result: Obj | None = None
    #: Whether ``pht held`` listed the result for the steward before the release.
    held_listed: bool = False
    #: The run's objects left once the Train ended: (kind, name, a Job's
    #: ttlSecondsAfterFinished or a Pod's phase).
    left_at_end: list[tuple[str, str, Any]] = field(default_factory=list)
    #: Seconds from the Train's end until its run was tidied up (see :func:`tidy`).
    seconds_to_tidy: float = 0.0
    #: Whether the station API still accepts the run's token once the Train ended (or went).
    registration_active: bool | None = None
    #: The run's objects (and the Train) left after the Train was deleted.
    left_after_delete: list[str] = field(default_factory=list)
    #: (reason, message) of the Events about the Train.
    events: set[tuple[str, str]] = field(default_factory=set)
    #: The slow train's processes seen while it ran, and still alive once the Train ended
    #: or went.
    processes_while_running: int = 0
    processes_at_end: int = 0


def conditions(train: Obj) -> list[tuple[str, str, str, str]]:
    found = (train.get("status") or {}).get("conditions") or []
    return sorted(
        (c["type"], c["status"], c.get("reason", ""), c.get("message", "")) for c in found
    )


def has_condition(train: Obj, kind: str, status: str, reason: str) -> bool:
    return any(c[:3] == (kind, status, reason) for c in conditions(train))


def awaiting_approval(train: Obj) -> bool:
    return has_condition(train, "Approved", "False", "AwaitingApproval")


def running(train: Obj) -> bool:
    return has_condition(train, "Running", "True", "Running")


async def run_objects(station: LocalStation, uid: str) -> list[tuple[str, str, Any]]:
    """Everything in the run namespace that belongs to the Train with ``uid``."""
    stem = f"pht-{uid[:8]}-"
    found: list[tuple[str, str, Any]] = []
    for kind, template in RUN_KINDS.items():
        answer = await station.kube_request("GET", template.format(ns=RUN_NAMESPACE))
        assert answer.status_code == 200, answer.text
        for item in answer.json()["items"]:
            meta = item["metadata"]
            labels = meta.get("labels") or {}
            if labels.get(constants.LABEL_TRAIN_UID) == uid or meta["name"].startswith(stem):
                detail = (
                    (item.get("status") or {}).get("phase")
                    if kind == "Pod"
                    else (item.get("spec") or {}).get("ttlSecondsAfterFinished")
                )
                found.append((kind, meta["name"], detail))
    return sorted(found)


def tidy(objects: list[tuple[str, str, Any]]) -> bool:
    """An ended run as it should be left: no Secret or NetworkPolicy, each Job with a TTL, no
    pod still running (a pod the Job controller deleted at the deadline is gone)."""
    return all(
        (kind == "Job" and detail) or (kind == "Pod" and detail in ("Succeeded", "Failed"))
        for kind, _n, detail in objects
    )


async def cleaned_up(station: LocalStation, uid: str) -> list[tuple[str, str, Any]]:
    """The run's objects once the operator and the node have tidied up after the Train's end
    (the operator records the outcome first, then cleans up; a pod deleted at the deadline is
    killed, then goes), or as they are when that does not happen within 30 s."""
    objects: list[tuple[str, str, Any]] = []

    async def check() -> bool:
        nonlocal objects
        objects = await run_objects(station, uid)
        return tidy(objects)

    with contextlib.suppress(TimeoutError):
        await until(check, 30, "the run was not cleaned up")
    return objects


def registration_active(station: LocalStation, uid: str) -> bool:
    """Whether the station API holds an unrevoked registration (a usable token) for ``uid``."""
    path = station.config.work_dir / "api-state" / "registrations.json"
    if not path.exists():
        return False
    for item in json.loads(path.read_text())["trains"]:
        if item["registration"]["uid"] == uid:
            return not item["revoked"]
    return False


async def events_about(station: LocalStation, name: str) -> set[tuple[str, str]]:
    answer = await station.kube_request("GET", EVENTS_PATH)
    assert answer.status_code == 200, answer.text
    return {
        (e["reason"], e.get("note", ""))
        for e in answer.json()["items"]
        if (e.get("regarding") or {}).get("kind") == constants.TRAIN_KIND
        and (e.get("regarding") or {}).get("name") == name
    }


def train_processes(uid: str) -> list[int]:
    """Live processes of the run of the Train with ``uid``, found by the environment its pod
    gives them (a local process and a runc container's processes alike)."""
    wanted = f"{constants.ENV_TRAIN_UID}={uid}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and wanted in environ:
            found.append(int(entry.name))
    return found


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        await asyncio.sleep(0.3)


async def delete_train(station: LocalStation, name: str, uid: str) -> list[str]:
    """Delete the Train as a cluster admin; what of it is left once it is gone (or the wait
    ran out)."""
    answer = await station.kube_request("DELETE", f"{TRAINS_PATH}/{name}")
    assert answer.status_code in (200, 202), answer.text
    left: list[str] = []

    async def all_gone() -> bool:
        nonlocal left
        gone = (await station.kube_request("GET", f"{TRAINS_PATH}/{name}")).status_code == 404
        left = [f"{k}/{n}" for k, n, _t in await run_objects(station, uid)]
        if not gone:
            left.append(f"Train/{name}")
        return not left

    with contextlib.suppress(TimeoutError):
        await until(all_gone, STEP_TIMEOUT, f"Train {name} and its run were not gone")
    return left


async def forget_approvals(station: LocalStation, name: str) -> None:
    """Approvals outlive their Train by design; the shared control plane gets rid of them."""
    answer = await station.kube_request("GET", APPROVALS_PATH)
    for item in answer.json()["items"]:
        if (item["spec"].get("train") or {}).get("name") == name:
            await station.kube_request("DELETE", f"{APPROVALS_PATH}/{item['metadata']['name']}")


async def listed_as_held(station: LocalStation, name: str) -> bool:
    """Whether the steward's ``pht held`` lists the Train's result."""
    listing = json.loads(await steward_cli(station, "held", "-o", "json"))
    items = listing["items"] if isinstance(listing, dict) else listing
    return any((i["namespace"], i["name"]) == (REQUEST_NAMESPACE, name) for i in items)


def slow_trains(root: Path) -> dict[str, BundledTrain]:
    """Image repository → a package of its own, for each case that runs the slow train."""
    return {
        image_repository(slow_image(case.name)): write_slow_train(root, case.name)
        for case in CASES
        if case.slow
    }


async def processes_gone(uid: str) -> int:
    """The run's processes still alive after waiting up to 30 s for them to stop."""

    async def stopped() -> bool:
        return not train_processes(uid)

    with contextlib.suppress(TimeoutError):
        await until(stopped, 30, "the train kept running")
    return len(train_processes(uid))


def slow_images(out_dir: Path) -> Path:
    """A folder with every image archive `make images` built and, for each case that runs the
    slow train, an image of it: the Kaplan–Meier image with its module replaced."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for archive in IMAGE_ARCHIVES.glob("*.tar"):
        (out_dir / archive.name).symlink_to(archive)
    base = IMAGE_ARCHIVES / "kaplan-meier.tar"
    assert base.is_file(), f"{base}: no image archive; build it with `make images` (needs root)"
    for case in CASES:
        if case.slow:
            reference = slow_image(case.name).partition("@")[0]
            files = {"app/kaplan_meier/__main__.py": SLOW_SOURCE.encode()}
            ociimages.extend(base, out_dir / f"{case.name}.tar", files, reference)
    return out_dir


async def follow(station: LocalStation, case: Case) -> Ending:
    """One Train from ``kubectl apply`` to its end (or its deletion), as its users take it."""
    seen = Ending()
    name = case.name
    uid: str = (await station.apply(case.manifest, constants.TRAIN_PLURAL))["metadata"]["uid"]
    train = await station.wait_for(name, awaiting_approval, STEP_TIMEOUT)
    assert awaiting_approval(train), conditions(train)
    await station.approve(train)
    if case.slow:
        await station.wait_for(name, running, STEP_TIMEOUT)

        async def started() -> int:
            return len(train_processes(uid))

        with contextlib.suppress(TimeoutError):
            seen.processes_while_running = await until(started, 60, "the train did not start")
    if case.delete_while_running:
        seen.left_after_delete = await delete_train(station, name, uid)
    else:
        train = await station.wait_for(name, held_for_steward, STEP_TIMEOUT)
        if held_for_steward(train):
            seen.held_listed = await listed_as_held(station, name)
            await steward_cli(
                station, "release", f"{REQUEST_NAMESPACE}/{name}", "--reason", RELEASE_REASON
            )
        train = await station.wait_for(name, lambda _t: False, STEP_TIMEOUT)
        status = train.get("status") or {}
        seen.summary = status.get("summary")
        seen.conditions = conditions(train)
        if seen.summary == "Succeeded":
            seen.result = await station.released_result(name)
        ended = time.monotonic()
        seen.left_at_end = await cleaned_up(station, uid)
        seen.seconds_to_tidy = time.monotonic() - ended
    if case.slow:
        seen.processes_at_end = await processes_gone(uid)
    seen.registration_active = registration_active(station, uid)
    if not case.delete_while_running:
        seen.left_after_delete = await delete_train(station, name, uid)
    seen.events = await events_about(station, name)
    await forget_approvals(station, name)
    return seen
