"""``pht train run-local DIR``: run a train against a synthetic cohort before shipping it.

The logic lives in :mod:`pht_sandbox.rehearsal`; this module parses options, prints what a
station would do and maps the outcome to an exit code a script can test.
"""

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from pht_cli.sandbox import require_sandbox

EXIT_RELEASED: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_HELD: Final = 3
EXIT_BLOCKED: Final = 4
#: Rows of a table and statistics printed; the saved files hold all of them.
MAX_PRINTED: Final = 40

BANNER: Final = (
    "LOCAL RUN on synthetic data: not a station. The train runs as a local process (not "
    "isolated like a pod), nobody approves it; the gateway and disclosure gate are real."
)

EXIT_CODES_HELP: Final = """\
exit codes:
  0  the gate released the result (its tables are printed and saved)
  1  the train failed (its pht-train-failure reason is printed) or left no result
  2  bad input: not a train directory, a manifest the policy refuses (each field named),
     an unreadable policy, or the local station API could not start
  3  the gate held the result for a steward (the rule is printed)
  4  the gate blocked the result (the rule is printed)
"""


def print_table(table: dict[str, Any]) -> None:
    from pht_sandbox.tables import format_table

    print("\n" + format_table(table, MAX_PRINTED))


def run_local(args: argparse.Namespace) -> int:
    require_sandbox()
    from pht_sandbox import rehearsal

    def say(line: str) -> None:
        print(line, flush=True)

    options = rehearsal.LocalRunOptions(
        directory=Path(args.directory),
        manifest=Path(args.manifest) if args.manifest else None,
        policy=Path(args.policy) if args.policy else None,
        out=Path(args.out) if args.out else None,
        patients=args.patients,
        seed=args.seed,
        parameters=args.parameters,
    )
    print(BANNER, flush=True)
    try:
        outcome = rehearsal.run_local(options, say)
    except rehearsal.ManifestRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except rehearsal.RunLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: the local station was stopped", file=sys.stderr)
        return 130
    if not outcome.queries:
        print("query   (none: the train ran no query)")
    for query in outcome.queries:
        name = query.name or "(not a declared query)"
        digest = f"sha256:{query.query_hash}" if query.query_hash else "(unparseable)"
        if query.outcome == "answered":
            told = f"answered, {query.rows} rows, {query.patients} distinct patients"
        else:
            told = f"{query.outcome}: {query.reason}"
        print(f"query   {name} {digest} {told}")
    if outcome.train_failed:
        sys.stdout.flush()  # keep the failure after the lines above when both go to one pipe
        if outcome.exit_code is None:
            print("failed  the train ran past its deadline (DeadlineExceeded)", file=sys.stderr)
        elif outcome.failure_reason:
            print(f"failed  pht-train-failure: {outcome.failure_reason}", file=sys.stderr)
        else:
            print(
                f"failed  the train exited with code {outcome.exit_code} without a reason; "
                "its last lines:",
                file=sys.stderr,
            )
            for line in outcome.log_tail:
                print(f"  | {line}", file=sys.stderr)
            requirements = Path(args.directory) / "requirements.txt"
            if requirements.is_file():
                print(
                    f"hint    the train's own dependencies ({requirements}) must be installed "
                    "in this Python environment",
                    file=sys.stderr,
                )
        print(f"gate    {outcome.release} (nothing is released for a failed run)")
        print(f"saved   {outcome.out}/train.log, {outcome.out}/run.json")
        return EXIT_FAILED
    rule = f" (rule {outcome.rule})" if outcome.rule else ""
    cells = f", {outcome.suppressed_cells} cell(s) suppressed" if outcome.suppressed_cells else ""
    print(f"gate    {outcome.release}{rule}{cells}")
    for finding in outcome.findings:
        print(f"        {finding}")
    if outcome.release == "Released" and outcome.result is not None:
        for table in outcome.result.get("tables", []):
            print_table(table)
        statistics = outcome.result.get("statistics", [])
        for statistic in statistics[:MAX_PRINTED]:
            print(f"statistic {statistic['name']} = {statistic['value']:.6g} (n={statistic['n']})")
        if len(statistics) > MAX_PRINTED:
            print(f"… {len(statistics) - MAX_PRINTED} more statistics in result.json")
        print(f"\nsaved   {outcome.out}/result.json and one CSV per table, run.json, train.log")
        return EXIT_RELEASED
    print(f"saved   {outcome.out}/run.json, {outcome.out}/train.log")
    if outcome.release == "Held":
        print("at a station a steward would now review the result (pht held / release / block)")
        return EXIT_HELD
    if outcome.release == "Blocked":
        return EXIT_BLOCKED
    print("the train finished without uploading a result (NoOutput)", file=sys.stderr)
    return EXIT_FAILED


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="work on trains before shipping them")
    commands = parser.add_subparsers(dest="train_command", metavar="COMMAND", required=True)
    local = commands.add_parser(
        "run-local",
        help="run a train against a synthetic cohort and a local station API (no cluster)",
        description="Run the train in DIR (package <dir name with underscores>, run as python "
        "-m) as a local process against a real station API on 127.0.0.1 with a generated "
        "cohort: the Train manifest is admitted against the policy, registered with its "
        "approved query hashes, and the disclosure gate decides on its result. Prints the "
        "audited queries (hashes), progress and the gate's decision with the released tables; "
        "saves result.json, one CSV per table, run.json and train.log. This is a local run "
        "on synthetic data, not a station.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    local.add_argument("directory", metavar="DIR", help="the train's directory")
    local.add_argument(
        "--manifest", metavar="FILE", help="the Train manifest (default examples/trains/<DIR>.yaml)"
    )
    local.add_argument(
        "--policy",
        metavar="FILE",
        help="the StationPolicy (default examples/policies/station-policy.yaml)",
    )
    local.add_argument("--patients", type=int, default=250, help="synthetic patients (250)")
    local.add_argument("--seed", type=int, default=0, help="cohort seed (0)")
    local.add_argument(
        "--parameters", metavar="JSON", help="replace the manifest's spec.parameters"
    )
    local.add_argument(
        "--out", metavar="DIR", help="where to save results (default pht-run-local/<train name>)"
    )
    local.set_defaults(handler=run_local)
