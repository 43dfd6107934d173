"""``pht audit verify`` and ``pht audit show TRAIN``: check the provenance chain, tell a story.

Both read the provenance store directly. Oxigraph allows one writing process, so run them
against a stopped station API, or against a copy (a backup directory, or the N-Quads export) —
together with the chain-head file, which lives outside the store. ``verify`` exits 1 and names
each offending record when any triple was edited, deleted or inserted, a record reordered, or
the head file is missing or corrupted (without it a rewritten chain cannot be told apart);
it exits 2 only when the store itself cannot be opened.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pyoxigraph import RdfFormat, Store

from pht_cli import output
from pht_station_api.provenance import ProvenanceChain, ProvenanceRecord
from pht_station_api.settings import Settings


def _open_chain(args: argparse.Namespace) -> ProvenanceChain:
    settings = Settings()
    head = Path(args.head_file) if args.head_file else settings.chain_head_path
    if args.export:
        store = Store()
        store.load(path=args.export, format=RdfFormat.N_QUADS)
    else:
        directory = Path(args.store) if args.store else settings.audit_store_dir
        if not directory.is_dir():
            raise FileNotFoundError(f"no provenance store at {directory}")
        store = Store.read_only(str(directory))
    return ProvenanceChain(store, head)


def verify(args: argparse.Namespace) -> int:
    try:
        report = _open_chain(args).verify()
    except (OSError, SyntaxError, ValueError) as exc:
        print(f"error: cannot read the provenance store: {exc}", file=sys.stderr)
        return 2
    if report.ok:
        heads = f"{report.published_heads or 0} published head(s) match"
        print(f"chain intact: {report.records} record(s), head {report.head}, {heads}")
        return 0
    for problem in report.problems:
        print(f"TAMPERED {problem}")
    print(f"{len(report.problems)} problem(s) in {report.records} record(s)", file=sys.stderr)
    return 1


def _matches(record: ProvenanceRecord, train: str, namespace: str | None) -> bool:
    if record.train_uid == train:
        return True
    details = record.details
    return details.get("name") == train and namespace in (None, details.get("namespace"))


def _line(record: ProvenanceRecord) -> str:
    details = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(record.details.items()))
    return f"{record.seq:>6}  {record.at}  {record.kind.value:<14} {record.actor:<20} {details}"


def show(args: argparse.Namespace) -> int:
    try:
        chain = _open_chain(args)
    except (OSError, SyntaxError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    namespace, _, name = args.train.rpartition("/")
    namespace = namespace or args.namespace
    uids = {
        r.train_uid
        for r in chain.records()
        if r.train_uid is not None and _matches(r, name, namespace)
    }
    if not uids:
        print(f"no provenance records for train {args.train}", file=sys.stderr)
        return 1
    structured = args.output in ("json", "yaml")
    stories: list[dict[str, Any]] = []
    for uid in sorted(uids):
        story = chain.story(uid)
        if structured:
            stories.append({"uid": uid, "records": [r.canonical() for r in story]})
            continue
        print(f"train uid {uid}: {len(story)} record(s)")
        for record in story:
            print(_line(record))
    if structured:
        print(output.render_document(stories, args.output), end="")
    return 0


def _source_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--store", metavar="DIR", help="provenance store (default: PHT_API_AUDIT_STORE)"
    )
    source.add_argument("--export", metavar="FILE", help="an N-Quads export of the store")
    parser.add_argument(
        "--head-file",
        metavar="FILE",
        help="the chain heads published outside the store (default: PHT_API_CHAIN_HEAD_FILE)",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="verify the provenance chain; show a train's story",
        description="Read the station API's provenance store (stopped API, a backup or an "
        "N-Quads export) and the chain heads published outside it.",
    )
    commands = parser.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "verify",
        help="detect any edit, deletion, insertion or reordering (exit 1 if tampered)",
    )
    _source_options(check)
    check.set_defaults(handler=verify)
    story = commands.add_parser("show", help="every provenance record of one train")
    story.add_argument("train", metavar="TRAIN", help="NAME, NAMESPACE/NAME or the Train's uid")
    story.add_argument("-n", "--namespace", help="the Train's namespace")
    output.add_output_option(story)
    _source_options(story)
    story.set_defaults(handler=show)
