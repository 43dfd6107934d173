"""``pht demo``: the whole station on a laptop, with one train from apply to released result.

What runs (all on 127.0.0.1): an **emulated** Kubernetes API, the real operator, the real
station API on embedded Oxigraph with a synthetic Lung1-shaped cohort, and a kubelet that
runs bundled example trains as **local processes that are not isolated the way pods are**.
The demo applies the example StationPolicy and the Kaplan–Meier Train, approves it as a data
steward, shows the Train's conditions and progress live, shows the steward reviewing and
releasing the held result (the gate holds every result of an image not reviewed for automatic
release), prints the released result, and saves
it (JSON, CSV) with a plot of the survival curves. Then it leaves the station running for
``kubectl`` until Ctrl-C, unless ``--once``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import yaml

from pht_contract import constants
from pht_contract.objects import Obj
from pht_sandbox.stations import REQUEST_NAMESPACE, LocalStation, StationConfig, fresh_work_dir
from pht_sandbox.survivalplots import plot_survival
from pht_sandbox.tables import format_table
from pht_sandbox.terminating import stops_on_sigterm

REPO: Final = Path(__file__).resolve().parents[2]
POLICY_FILE: Final = REPO / "examples" / "policies" / "station-policy.yaml"
TRAIN_FILE: Final = REPO / "examples" / "trains" / "kaplan-meier.yaml"
#: The same question answered by the station itself: every number it releases, it computed.
STATION_TRAIN_FILE: Final = REPO / "examples" / "trains" / "survival-aggregates.yaml"
TRAIN_TIMEOUT: Final = 120.0
RELEASE_REASON: Final = (
    "reviewed: survival curves by stage, counts of at least 5, no row-level data"
)

REAL_BANNER: Final = """\
PHT station on a REAL Kubernetes control plane — for evaluation and development only.
  * etcd, kube-apiserver, kube-controller-manager and kube-scheduler run on 127.0.0.1, with the
    chart's CRDs, admission policies and RBAC; the operator runs under the chart's RBAC.
  * Train pods run on a node agent: as isolated OCI containers under runc where this machine
    allows it (root, runc, 'make images'), else as LOCAL PROCESSES WITHOUT CONTAINER ISOLATION;
    the agent says which, and why, when it starts.
  * The cohort is SYNTHETIC (Lung1-shaped, ROO/NCIT terms); never load patient data here.
"""

BANNER: Final = """\
PHT station in a box — for evaluation and development only.
  * The Kubernetes API is EMULATED in this process (no cluster, no authentication, no RBAC).
  * Train images run as LOCAL PROCESSES, which are NOT isolated the way pods are.
  * The cohort is SYNTHETIC (Lung1-shaped, ROO/NCIT terms); never load patient data here.
"""


def _load(path: Path) -> Obj:
    document: Obj = yaml.safe_load(path.read_text())
    return document


def _conditions(train: Obj) -> str:
    status = train.get("status") or {}
    parts = [f"{c['type']}={c['status']}({c['reason']})" for c in status.get("conditions", [])]
    progress = status.get("progress") or {}
    tail = f"  progress {progress['percent']}% {progress['stage']}" if progress else ""
    return f"[{status.get('summary', 'Pending'):>16}] " + ", ".join(parts) + tail


def result_tables(result: Obj) -> list[Obj]:
    """The released tables: those the train uploaded, then those the station computed."""
    computed = [a["table"] for a in result.get("aggregates") or [] if a.get("table")]
    return [*result.get("tables", []), *computed]


def save_result(result: Obj, out: Path, name: str, title: str) -> list[Path]:
    """The released result as ``<name>.json``, each table as CSV, and a Kaplan–Meier figure of
    each survival table."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{name}.json"]
    written[0].write_text(json.dumps(result, indent=2))
    for table in result_tables(result):
        path = out / f"{table['name']}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c["name"] for c in table["columns"]])
            writer.writerows(table["rows"])
        written.append(path)
        plot = plot_survival(table, out / f"{table['name']}.png", title)
        if plot is not None:
            written.append(plot)
    return written


async def run_one_train(
    station: LocalStation, train_doc: Obj, say: Any = print, source: Path = TRAIN_FILE
) -> Obj:
    """Apply, approve when asked, follow to the end; returns the final Train."""
    name = train_doc["metadata"]["name"]
    await station.apply(train_doc, constants.TRAIN_PLURAL)
    say(f"$ kubectl apply -f {source.relative_to(REPO)}   # Train/{name} created")

    def awaiting_approval(train: Obj) -> bool:
        return any(
            c["type"] == "Approved" and c["reason"] == "AwaitingApproval"
            for c in (train.get("status") or {}).get("conditions", [])
        )

    def show(train: Obj) -> None:
        say("  " + _conditions(train))

    train = await station.wait_for(name, awaiting_approval, TRAIN_TIMEOUT, show)
    if awaiting_approval(train):
        say(f"$ pht approve {name}   # {station.approver}, a data steward, approves")
        say("  " + await station.approve(train))
    train = await station.wait_for(name, held_for_steward, TRAIN_TIMEOUT, show)
    if held_for_steward(train):
        # The gate releases nothing an algorithm computed on its own unless a steward reviewed
        # the image for automatic release; here the steward looks at the result and releases it.
        namespace = train["metadata"]["namespace"]
        say("$ pht held   # the result waits for a data steward (gate findings attached)")
        say(indent(await steward_cli(station, "held")))
        say(f"$ pht release {namespace}/{name} --reason {RELEASE_REASON!r}")
        say(
            indent(
                await steward_cli(
                    station, "release", f"{namespace}/{name}", "--reason", RELEASE_REASON
                )
            )
        )
    return await station.wait_for(name, lambda _t: False, TRAIN_TIMEOUT, show)


async def show_result(
    station: LocalStation, train: Obj, out_dir: Path, file_name: str, started: float
) -> bool:
    """Print and save the Train's released result; False when it did not succeed."""
    status = train.get("status") or {}
    name = train["metadata"]["name"]
    if status.get("summary") != "Succeeded":
        print(f"\nTrain/{name} ended {status.get('summary')}: {_conditions(train)}")
        return False
    result = await station.released_result(name)
    print(
        f"\nreleased result of Train/{name} "
        f"({time.monotonic() - started:.1f}s after `pht demo` started):"
    )
    for table in result_tables(result):
        print("\n" + format_table(table))
    for aggregate in result.get("aggregates") or []:
        if aggregate.get("status") != "Released":
            print(f"\naggregate {aggregate['name']}: {aggregate['status']} ({aggregate['rule']})")
    title = f"Train/{name}, released (synthetic cohort)"
    files = save_result(result, out_dir, file_name, title)
    print("\nsaved: " + ", ".join(str(p) for p in files))
    return True


def held_for_steward(train: Obj) -> bool:
    return any(
        c["type"] == "ResultReleased" and c["reason"] == "AwaitingRelease"
        for c in (train.get("status") or {}).get("conditions", [])
    )


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


async def steward_cli(station: LocalStation, *args: str) -> str:
    """Run a real ``pht`` results command as the station's data steward."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pht_cli.main",
        *args,
        "--url",
        station.urls.external,
        env={**os.environ, "PHT_TOKEN": station.steward_token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        raise RuntimeError(f"pht {args[0]} failed: {text}")
    return text


@stops_on_sigterm
async def demo(
    work_dir: Path,
    out_dir: Path,
    once: bool,
    patients: int,
    cluster: str = "emulator",
    runtime: str = "auto",
) -> int:
    """The demo's story on the emulated cluster (``cluster="emulator"``) or on a real
    control plane (``cluster="real"``, its train pods run by the ``runtime`` the node agent
    chooses); 0 when the Train's result was released."""
    real = cluster == "real"
    make_station: Callable[[StationConfig], LocalStation] = LocalStation
    if real:
        from pht_sandbox.realstation import RealStation, control_plane_binaries, require_runtime

        control_plane_binaries()  # says how to build them, before anything starts
        require_runtime(runtime)  # says why runc cannot work here, before anything starts

        def make_station(config: StationConfig) -> LocalStation:
            return RealStation(config, pod_runtime=runtime)

    print(REAL_BANNER if real else BANNER)
    started = time.monotonic()
    work_dir = fresh_work_dir(work_dir)
    config = StationConfig("demo", work_dir, patients=patients, policy_file=POLICY_FILE)
    async with make_station(config) as station:
        print(
            f"station up in {time.monotonic() - started:.1f}s: "
            f"{'real' if real else 'emulated'} cluster "
            f"{station.urls.kubernetes}, station API {station.urls.external}"
        )
        if not real:
            print(
                f"steward console {station.console_url}\n"
                f"  local login: {station.console_user} / {station.steward_password}"
                "   (a new password for every demo; shown only here)"
            )
        policy = _load(POLICY_FILE)
        await station.apply(policy, constants.POLICY_PLURAL)
        print(f"$ kubectl apply -f {POLICY_FILE.relative_to(REPO)}   # StationPolicy created")
        print(
            "\nFirst, survival by stage computed by the STATION itself (spec.aggregates): a "
            "Kaplan–Meier table on\na grid fixed at approval, checked by the station's own "
            "rules; its image reads and uploads\nnothing, so no steward has to release the result."
        )
        computed = await run_one_train(
            station, _load(STATION_TRAIN_FILE), source=STATION_TRAIN_FILE
        )
        succeeded = await show_result(station, computed, out_dir, "survival-aggregates", started)
        print(
            "\nThen the same question asked of an algorithm: the numbers it computed wait for a "
            "steward,\nwho reads the gate's findings before releasing them."
        )
        train = await run_one_train(station, _load(TRAIN_FILE))
        name = train["metadata"]["name"]
        succeeded = await show_result(station, train, out_dir, "result", started) and succeeded
        if once:
            return 0 if succeeded else 1
        print(f"""
The station keeps running (Ctrl-C stops it). Try:
  export kubeconfig={station.urls.kubeconfig}
  kubectl get trains -n {REQUEST_NAMESPACE}
  kubectl describe train {name} -n {REQUEST_NAMESPACE}
  kubectl apply -f examples/trains/cohort-summary.yaml
  API docs          {station.urls.external}/docs
  FAIR Data Point   {station.urls.external}/
  operator metrics  {station.urls.operator_metrics}
""")
        try:
            while True:
                await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
    return 0
