"""The rehearsal from start to end: admit, register, run, complete, read the decision."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pht_sandbox.rehearsal.inputs import (
    LocalRunOptions,
    RunLocalError,
    admit,
    default_manifest,
    default_policy,
    find_train,
    load_manifest,
    load_policy,
)
from pht_sandbox.rehearsal.operatorpart import complete, register
from pht_sandbox.rehearsal.outcome import (
    LocalRunOutcome,
    clear_previous,
    gate_findings,
    read_story,
    save_result,
    summary,
)
from pht_sandbox.rehearsal.stationprocess import local_station
from pht_sandbox.rehearsal.trainprocess import failure_reason, run_process
from pht_sandbox.terminating import sigterm_as_ctrl_c

Say = Callable[[str], None]


def run_local(options: LocalRunOptions, say: Say) -> LocalRunOutcome:
    """Admit, register, run, complete, read the decision; save what a requester would get.

    SIGTERM interrupts it as Ctrl-C does: the train and the local station API are stopped.
    """
    with sigterm_as_ctrl_c():
        return _rehearse(options, say)


def _rehearse(options: LocalRunOptions, say: Say) -> LocalRunOutcome:
    bundle = find_train(options.directory)
    manifest = options.manifest or default_manifest(bundle)
    policy_file = options.policy or default_policy()
    policy = load_policy(policy_file)
    document = load_manifest(manifest, options.parameters)
    train = admit(document, manifest, policy)
    if options.patients < 1:
        raise RunLocalError("--patients must be at least 1")
    out = options.out or Path("pht-run-local") / train.name
    graphs = list(train.spec.graphs or policy.data_access.allowed_graphs)
    if not graphs:
        raise RunLocalError("the policy allows no graph to hold the synthetic cohort")
    say(f"train   {train.name}: python -m {bundle.module} from {bundle.directory}")
    hashes = len(train.decision.approved_query_hashes)
    approval = (
        " (approval by a steward skipped: local run)" if train.decision.requires_approval else ""
    )
    say(f"policy  {policy_file}: admitted, {hashes} approved query hash(es){approval}")
    say(
        "review  the gate's checks decide alone here; at a station the result waits for a "
        "steward unless the policy lists this image's digest for automatic release"
    )
    clear_previous(out)
    with tempfile.TemporaryDirectory(prefix="pht-run-local-") as work:
        root = Path(work)
        with local_station(root, policy_file) as station:
            station.load_cohort(options.patients, options.seed, graphs[0])
            say(
                f"cohort  {options.patients} synthetic patients (seed {options.seed}) "
                f"in {graphs[0]}"
            )
            station.start()
            say(f"station local pht api at {station.internal} (gateway, disclosure gate)")
            request, token = register(station.operator, train, policy)
            run_dir = root / "run"
            run_dir.mkdir()
            code, log = run_process(station, request, token, bundle, run_dir, say)
            state = complete(station.operator, train, request.uid, code)
            reason, tail = failure_reason(log) if log.exists() else (None, [])
            outcome = LocalRunOutcome(
                train_name=train.name,
                release=state.release.value,
                rule=state.rule,
                exit_code=code,
                failure_reason=reason,
                log_tail=tail if code != 0 else [],
                findings=gate_findings(station, train),
                out=out,
            )
            outcome.queries, outcome.suppressed_cells = read_story(station, train)
            if state.release.value == "Released":
                outcome.result = save_result(station, train, out)
            station.operator.deregister(request.uid)
        out.mkdir(parents=True, exist_ok=True)
        if log.exists():
            shutil.copyfile(log, out / "train.log")
    (out / "run.json").write_text(json.dumps(summary(outcome), indent=1) + "\n", encoding="utf-8")
    return outcome
