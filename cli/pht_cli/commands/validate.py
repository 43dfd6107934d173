"""``pht validate``: check manifests offline — schema, CEL rules and the station policy."""

import argparse
import sys
from pathlib import Path
from typing import Any

from pht_contract.hashing import aggregates_hash
from pht_contract.sparql import query_hash
from pht_contract.trains import Train
from pht_contract.validation import describe, find_policy, load_documents, validate_object


def standing_scope_hashes(doc: dict[str, Any]) -> list[str]:
    """What a standing approval names to cover this Train: its queries' and aggregates' hashes."""
    spec = Train.model_validate(doc).spec
    lines = [f"queryHash {q.name}: {query_hash(q.sparql)}" for q in spec.queries or []]
    covered = aggregates_hash(spec)
    if covered is not None:
        lines.append(f"aggregatesHash: {covered}")
    return lines


def run(args: argparse.Namespace) -> int:
    documents: list[tuple[Path, dict[str, Any]]] = []
    try:
        for name in args.files:
            path = Path(name)
            documents.extend((path, doc) for doc in load_documents(path))
        policy_docs = load_documents(Path(args.policy)) if args.policy else []
        old_docs = load_documents(Path(args.old)) if args.old else []
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # YAML syntax errors
        print(f"error: cannot read manifest: {exc}", file=sys.stderr)
        return 2
    if not documents:
        print("error: the files hold no objects to validate", file=sys.stderr)
        return 2
    policy = find_policy(policy_docs) if args.policy else find_policy(d for _, d in documents)
    if args.policy and policy is None:
        print(f"error: {args.policy} holds no valid StationPolicy", file=sys.stderr)
        return 2
    old_by_name = {describe(d): d for d in old_docs}
    failed = 0
    for path, doc in documents:
        problems = validate_object(doc, policy, old_by_name.get(describe(doc)))
        if problems:
            failed += 1
            for problem in problems:
                print(f"{path}: {describe(doc)}: {problem}")
        else:
            checked = (
                "schema, CEL and policy"
                if policy and doc.get("kind") == "Train"
                else ("schema and CEL")
            )
            print(f"{path}: {describe(doc)}: valid ({checked})")
            if doc.get("kind") == "Train":
                for line in standing_scope_hashes(doc):
                    print(f"  {line}")
    if failed:
        print(f"{failed} of {len(documents)} object(s) invalid", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate Train, StationPolicy and TrainApproval manifests offline",
        description="Validate manifests against the CRD schema and CEL rules and, for Trains, "
        "against a station policy (from --policy, or a StationPolicy among the files). Every "
        "problem is printed with its field path; the exit code is 1 if any object is invalid.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML manifests")
    parser.add_argument("--policy", metavar="FILE", help="a StationPolicy manifest")
    parser.add_argument(
        "--old",
        metavar="FILE",
        help="the objects as they were (checks update rules such as spec immutability)",
    )
    parser.set_defaults(handler=run)
