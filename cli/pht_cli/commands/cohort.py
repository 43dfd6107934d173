"""``pht cohort generate``: write a synthetic Lung1-shaped cohort (ROO/NCIT) for tests and demos."""

import argparse
import sys
from pathlib import Path
from typing import Any

EXTENSIONS = {"ntriples": ".nt", "nquads": ".nq", "turtle": ".ttl"}


def _format(args: argparse.Namespace, out: Path) -> str:
    if args.format:
        return str(args.format)
    for fmt, ext in EXTENSIONS.items():
        if out.suffix == ext:
            return fmt
    return "nquads"


def generate(args: argparse.Namespace) -> int:
    from pht_station_api.cohorts import patient_lines

    if args.patients < 1 or args.hospitals < 1:
        print("error: --patients and --hospitals must be at least 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    targets: list[tuple[int, Path]]
    if args.hospitals == 1:
        targets = [(1, out)]
    else:
        out.mkdir(parents=True, exist_ok=True)
        fmt = args.format or "nquads"
        targets = [
            (k, out / f"hospital-{k}{EXTENSIONS[fmt]}") for k in range(1, args.hospitals + 1)
        ]
    for hospital, path in targets:
        fmt = _format(args, path)
        # N-Triples and Turtle carry no graph: ``pht load`` puts them into --graph.
        graph = args.graph if fmt == "nquads" else None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for chunk in patient_lines(args.patients, args.seed, hospital, graph):
                handle.write(chunk)
        print(f"{path}: {args.patients} patients (hospital {hospital}, seed {args.seed}, {fmt})")
    return 0


def register(subparsers: Any) -> None:
    from pht_station_api.cohorts import DEFAULT_GRAPH, DEFAULT_PATIENTS

    parser = subparsers.add_parser("cohort", help="synthetic lung cancer cohorts")
    commands = parser.add_subparsers(dest="cohort_command", metavar="COMMAND", required=True)
    gen = commands.add_parser(
        "generate",
        help="write a synthetic Lung1-shaped cohort in the ROO/NCIT vocabulary",
        description="Deterministic per seed; stage-consistent; hospital 1 follows the "
        "published Lung1 case mix, further hospitals get their own seeded mixes. With "
        "--hospitals K > 1, --out is a directory that receives one file per hospital.",
    )
    gen.add_argument(
        "--patients",
        type=int,
        default=DEFAULT_PATIENTS,
        help=f"patients per hospital (default {DEFAULT_PATIENTS})",
    )
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument(
        "--hospitals", type=int, default=1, help="hospitals, one file each when > 1 (default 1)"
    )
    gen.add_argument("--graph", default=DEFAULT_GRAPH, help="named graph (N-Quads output)")
    gen.add_argument("--format", choices=sorted(EXTENSIONS), help="default: from --out's suffix")
    gen.add_argument("--out", required=True, metavar="FILE", help="output file (or directory)")
    gen.set_defaults(handler=generate)
