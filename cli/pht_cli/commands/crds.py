"""``pht crds``: print (or write) the CustomResourceDefinitions generated from the models."""

import argparse
from pathlib import Path
from typing import Any

from pht_contract.crds import all_crds, render, render_all
from pht_contract.reference import render_reference


def run(args: argparse.Namespace) -> int:
    if args.reference:
        print(render_reference(), end="")
        return 0
    if args.out is None:
        print(render_all(), end="")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, crd in all_crds().items():
        (out / name).write_text(render(crd))
        print(f"wrote {out / name}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="print the CRDs (Train, StationPolicy, TrainApproval)",
        description="Print the CustomResourceDefinitions generated from the contract models "
        "(pipe to 'kubectl apply -f -'), or write one file per CRD with --out.",
    )
    parser.add_argument("--out", metavar="DIR", help="write one YAML file per CRD into DIR")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="print the generated field reference (the table in docs/api.md) instead",
    )
    parser.set_defaults(handler=run)
