"""The example Trains, and the ways a run fails, end to end on the real control plane.

One station on the real control plane (the chart's CRDs, admission policies and RBAC, the real
operator and station API, a node agent that runs the train pods: as isolated runc containers
from the built images, and once more as local processes) and one station in a box on
the emulator, both on the same synthetic cohort under the example StationPolicy, take the same
six Trains at once, as users do: the researcher applies each, a data steward approves it with
``pht approve`` and releases a held result with ``pht release``, a cluster admin deletes it.

* the cohort-summary and the federated-logistic Trains are released, with the same numbers the
  emulator's run gives;
* a train that exits non-zero, a train killed by its deadline, a result the gate blocks and a
  Train deleted while it runs each end with the reason and message the emulator gives;
* nothing of a run outlives it: at its end its Secret, NetworkPolicy and token are gone (the
  finished Job stays, with a TTL, until the Train goes), and once the Train is deleted no Job,
  pod, Secret or NetworkPolicy of it is left in the run namespace, and no train process runs.

Bounded: about 80 s per runtime for both stations and the six runs on two loaded cores, on top
of the shared control plane.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from realcluster_kube import policy_spec_in_place
from realcluster_trains import (
    CASES,
    DEADLINE_SECONDS,
    Ending,
    example_policy,
    follow,
    slow_images,
    slow_trains,
)

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.controlplane.cluster import ControlPlane
from pht_sandbox.nodeagent import RUNTIME_LABEL
from pht_sandbox.realstation import NODE_NAME, STEWARD_USER, RealStation
from pht_sandbox.stations import STEWARD, LocalStation, StationConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

#: The node agent's runtimes these runs are proven with (its Node carries the name).
POD_RUNTIMES = ("runc", "process")
PATIENTS = StationConfig("", Path()).patients
REAL_STEWARD = STEWARD_USER
EMULATOR_STEWARD = STEWARD
#: Reasons of passing states the operator reports only when a pass happens to see them.
PASSING_STATES = frozenset({"Pending"})


@dataclass
class Runs:
    """Each case's ending, by Train name, on the real control plane and on the emulator."""

    runtime: str
    real: dict[str, Ending]
    emulator: dict[str, Ending]
    #: The runtime the node agent's Node says runs its pods.
    node_runtime: str
    #: The Trains whose pod the node agent started (it keeps each pod's log).
    node_logs: list[str]
    seconds: float


async def follow_all(station: LocalStation) -> dict[str, Ending]:
    endings = await asyncio.gather(*(follow(station, case) for case in CASES))
    return {case.name: ending for case, ending in zip(CASES, endings, strict=True)}


def real_station(
    config: StationConfig, plane: ControlPlane, runtime: str, work: Path
) -> RealStation:
    """The station on the real control plane whose node agent runs pods with ``runtime``:
    ``runc`` runs the images `make images` built (and the slow train's, built here), ``process``
    the example trains' packages (and the slow train's, written here)."""
    images = slow_images(work / "images") if runtime == "runc" else None
    return RealStation(config, plane=plane, pod_runtime=runtime, images_dir=images)


async def run_everything(plane: ControlPlane, work: Path, runtime: str) -> Runs:
    started = time.monotonic()
    policy = example_policy()
    policy_file = work / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    with policy_spec_in_place(plane, policy["spec"]):
        real = real_station(
            StationConfig("trains", work / "real", policy_file=policy_file), plane, runtime, work
        )
        emulated = LocalStation(StationConfig("trains", work / "emulator", policy_file=policy_file))
        async with real, emulated:
            assert real.agent is not None
            node = (await real.kube_request("GET", f"/api/v1/nodes/{NODE_NAME}")).json()
            node_runtime = node["metadata"]["labels"][RUNTIME_LABEL]
            slow = slow_trains(work / "slow-trains")
            if runtime == "process":
                real.agent.trains.update(slow)
            assert emulated._kubelet is not None
            emulated._kubelet.trains.update(slow)
            await emulated.apply(policy, constants.POLICY_PLURAL)
            on_real, on_emulator = await asyncio.gather(follow_all(real), follow_all(emulated))
    logs = [log.name for log in (work / "real" / "node").glob("pht-*.log")]
    ran = [case.name for case in CASES if any(f"-{case.name}-" in log for log in logs)]
    return Runs(runtime, on_real, on_emulator, node_runtime, ran, time.monotonic() - started)


@pytest.fixture(scope="module", params=POD_RUNTIMES)
def runs(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    chart: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:
    runtime: str = request.param
    work = tmp_path_factory.mktemp(f"trains-{runtime}")
    done = asyncio.run(run_everything(control_plane, work, runtime))
    print(f"six Trains on the real control plane and on the emulator: {done.seconds:.1f} s")
    for name, ending in done.real.items():
        print(f"  {name}: tidied up {ending.seconds_to_tidy:.1f} s after its end (real)")
    return done


def normal(conditions: list[tuple[str, str, str, str]], approver: str) -> list[tuple[str, ...]]:
    """Conditions with the approving steward's name (each station has its own) left out."""
    return [tuple(part.replace(approver, "<steward>") for part in c) for c in conditions]


def released_tables(result: Obj) -> dict[str, list[list[object]]]:
    return {t["name"]: t["rows"] for t in result["tables"]}


def test_the_node_agent_ran_every_pod_with_the_runtime_asked_for(runs: Runs) -> None:
    assert runs.node_runtime == runs.runtime
    # Each run's pod was started by the node agent (its log stays with the station), not kwok.
    assert set(runs.node_logs) == {case.name for case in CASES}, runs.node_logs


def test_the_cohort_summary_is_released_with_the_emulators_numbers(runs: Runs) -> None:
    real, emulator = runs.real["cohort-summary"], runs.emulator["cohort-summary"]
    assert real.summary == "Succeeded", real.conditions
    assert real.held_listed and emulator.held_listed  # `pht held` showed it to the steward
    assert normal(real.conditions, REAL_STEWARD) == normal(emulator.conditions, EMULATOR_STEWARD)
    assert real.result is not None and emulator.result is not None
    tables = released_tables(real.result)
    assert set(tables) == {"patients_by_stage", "patients_by_histology", "patients_by_sex"}
    for table in real.result["tables"]:
        # Nothing suppressed: every patient of the synthetic cohort is counted once per table.
        assert table["cohortSize"] == PATIENTS
        assert sum(row[1] for row in table["rows"]) == PATIENTS, table
    assert real.result == emulator.result


def test_the_federated_round_is_released_with_the_emulators_numbers(runs: Runs) -> None:
    name = "federated-logreg-round-1"
    real, emulator = runs.real[name], runs.emulator[name]
    assert real.summary == "Succeeded", real.conditions
    assert real.held_listed and emulator.held_listed
    assert normal(real.conditions, REAL_STEWARD) == normal(emulator.conditions, EMULATOR_STEWARD)
    assert real.result is not None and emulator.result is not None
    statistics = {s["name"]: s["value"] for s in real.result["statistics"]}
    assert {"n", "gradient_intercept", "hessian_intercept__intercept"} <= set(statistics)
    assert 0 < statistics["n"] <= PATIENTS
    # At zero coefficients each patient adds -1/4 to the intercept's Hessian entry.
    assert statistics["hessian_intercept__intercept"] == pytest.approx(-statistics["n"] / 4)
    assert real.result == emulator.result


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        (
            "km-unknown-grouping",
            "BackoffLimitExceeded",
            "the run failed after 1 attempt(s) (backoffLimit reached); "
            "the train reported InvalidParameters",
        ),
        (
            "slow-past-deadline",
            "DeadlineExceeded",
            f"the run exceeded its deadline of {DEADLINE_SECONDS}s",
        ),
        (
            "km-three-patients",
            "DisclosureBlocked",
            "the disclosure gate blocked the result (rule MinCohort)",
        ),
    ],
)
def test_a_failed_run_ends_with_its_reason_as_on_the_emulator(
    runs: Runs, name: str, reason: str, message: str
) -> None:
    real, emulator = runs.real[name], runs.emulator[name]
    assert real.summary == "Failed", real.conditions
    assert ("Failed", "True", reason, message) in real.conditions
    assert ("Succeeded", "False", reason, message) in real.conditions
    assert (reason, message) in real.events  # `kubectl describe train` shows it too
    assert real.result is None
    assert normal(real.conditions, REAL_STEWARD) == normal(emulator.conditions, EMULATOR_STEWARD)


def test_a_train_that_fails_tells_the_researcher_why(runs: Runs) -> None:
    # Kaplan–Meier asked to group by an unknown variable ends with the SDK's InvalidParameters:
    # the runc container wrote it to /dev/termination-log, a local process as its last log line.
    for ending in (runs.real["km-unknown-grouping"], runs.emulator["km-unknown-grouping"]):
        (failed,) = [c for c in ending.conditions if c[0] == "Failed"]
        assert failed[3].endswith("; the train reported InvalidParameters"), ending.conditions


def test_a_train_deleted_while_it_runs_is_stopped_as_on_the_emulator(runs: Runs) -> None:
    name = "slow-deleted-while-running"
    for ending in (runs.real[name], runs.emulator[name]):
        assert ending.processes_while_running == 1
        assert ending.processes_at_end == 0  # the node agent killed the train's process
        assert ("Cancelled", "the Train was deleted; its run was stopped") in ending.events
        assert ending.left_after_delete == []
        assert ending.registration_active is False


def test_a_train_killed_by_its_deadline_stops_running(runs: Runs) -> None:
    for ending in (runs.real["slow-past-deadline"], runs.emulator["slow-past-deadline"]):
        assert ending.processes_while_running == 1
        assert ending.processes_at_end == 0


@pytest.mark.parametrize("name", [case.name for case in CASES if not case.delete_while_running])
def test_an_ended_run_keeps_only_its_finished_job_until_the_train_goes(
    runs: Runs, name: str
) -> None:
    real = runs.real[name]
    # The token is revoked, the Secret and the NetworkPolicy are gone; the finished Job (and
    # its finished pod, where the Job controller kept it) stays, with a TTL, for inspection.
    assert real.registration_active is False
    assert {kind for kind, _n, _d in real.left_at_end} <= {"Job", "Pod"}, real.left_at_end
    jobs = [detail for kind, _n, detail in real.left_at_end if kind == "Job"]
    assert len(jobs) == 1 and jobs[0] is not None and jobs[0] > 0, real.left_at_end
    pods = [detail for kind, _n, detail in real.left_at_end if kind == "Pod"]
    assert all(phase in ("Succeeded", "Failed") for phase in pods), real.left_at_end
    # Deleting the Train removes everything of its run, on both.
    assert real.left_after_delete == runs.emulator[name].left_after_delete == []


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_the_events_about_each_train_agree_with_the_emulator(runs: Runs, name: str) -> None:
    real = {reason for reason, _m in runs.real[name].events} - PASSING_STATES
    emulator = {reason for reason, _m in runs.emulator[name].events} - PASSING_STATES
    assert real == emulator
