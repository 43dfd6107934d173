"""``pht approve`` / ``pht reject`` / ``pht pending``: a steward's approval workflow.

An approval is a ``TrainApproval`` object bound to the Train's spec hash as admitted (read from
its status, where the operator recorded it at admission), so approving a Train and then changing
it approves nothing. Before writing an approval, the CLI judges the Train *as it is now* against
the namespace's StationPolicy *as it is now*, and refuses (nothing recorded) when the spec was
edited since admission or the policy refuses it; the operator repeats both checks, so this only
spares the steward a decision that could never count. The approver named in the object is
checked against the caller's Kubernetes identity by the chart's ValidatingAdmissionPolicy;
``--approver`` only fills the field.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx2
import lightkube

from pht_cli import kube, output
from pht_contract import constants
from pht_contract.approvalrecords import Decision, NotAdmitted, approval_refusal, train_approval


def _refusal(client: lightkube.Client, namespace: str, train: dict[str, Any]) -> str:
    """Why an approval of this Train could never count (empty when it could)."""
    policy = kube.get_or_none(client, kube.POLICIES, namespace, constants.STATION_POLICY_NAME)
    return approval_refusal(train, policy)


def _decide(args: argparse.Namespace, decision: Decision) -> int:
    target = kube.load_target(args.kubeconfig, args.context)
    namespace = args.namespace or target.namespace
    approver = args.approver or target.user_name
    with kube.reporting_connection_errors(target), kube.client(target) as client:
        try:
            return _record(client, args, namespace, approver, decision)
        except httpx2.HTTPStatusError as exc:
            print(f"error: {kube.api_error_text(exc)}", file=sys.stderr)
            return 1


def _record(
    client: lightkube.Client,
    args: argparse.Namespace,
    namespace: str,
    approver: str,
    decision: Decision,
) -> int:
    train = kube.get_or_none(client, kube.TRAINS, namespace, args.train)
    if train is None:
        print(f"error: Train {namespace}/{args.train} not found", file=sys.stderr)
        return 1
    try:
        approval_doc = train_approval(train, approver, decision, args.comment)
    except NotAdmitted:
        print(
            f"error: Train {args.train} has no spec hash yet (not admitted); nothing to "
            f"{decision.lower()}",
            file=sys.stderr,
        )
        return 1
    spec_hash = approval_doc["spec"]["train"]["specHash"]
    name = approval_doc["metadata"]["name"]
    if decision == "Approve":
        why = _refusal(client, namespace, train)
        if why:
            print(
                f"error: not approving {args.train}: {why}; no approval was recorded",
                file=sys.stderr,
            )
            return 1
    approval = kube.new_object(kube.APPROVALS, approval_doc)
    try:
        client.create(approval, namespace=namespace)
    except httpx2.HTTPStatusError as exc:
        if exc.response.status_code != 409:
            raise
        # One decision per approver and spec hash: never report a decision as recorded
        # when the object holds the opposite one.
        existing = kube.get_or_none(client, kube.APPROVALS, namespace, name)
        recorded = ((existing or {}).get("spec") or {}).get("decision", "Approve")
        if existing is not None and recorded != decision:
            print(
                f"error: {approver} already recorded {recorded} for {args.train} (spec hash "
                f"{spec_hash[:12]}) in TrainApproval {namespace}/{name}; your {decision} was "
                "not recorded. A recorded decision is not changed by the CLI: ask the "
                "station's administrator to delete that TrainApproval first",
                file=sys.stderr,
            )
            return 1
        print(f"{decision.lower()} of {args.train} by {approver} already recorded ({name})")
        return 0
    verb = "approved" if decision == "Approve" else "rejected"
    print(f"{args.train} {verb} by {approver} for spec hash {spec_hash} ({name})")
    return 0


PENDING_COLUMNS = (
    output.Column("NAMESPACE", "namespace"),
    output.Column("NAME", "name"),
    output.Column("SPEC HASH", "specHash", width=12),
    output.Column("REQUESTER", "requester"),
    output.Column("IMAGE", "image", width=60),
)


def _awaiting(client: lightkube.Client, namespace: str) -> list[dict[str, Any]]:
    rows = []
    for obj in client.list(kube.TRAINS, namespace=namespace):
        train = kube.as_dict(obj)
        status = train.get("status") or {}
        if status.get("summary") != "AwaitingApproval":
            continue
        spec = train.get("spec") or {}
        requester = spec.get("requester") or {}
        approved = [c for c in status.get("conditions") or [] if c.get("type") == "Approved"]
        rows.append(
            {
                "namespace": namespace,
                "name": train["metadata"]["name"],
                "specHash": str(status.get("specHash", "")),
                "requester": f"{requester.get('name', '?')} ({requester.get('organisation', '?')})",
                "image": str(spec.get("image", "")),
                "missing": approved[0].get("message", "") if approved else "",
            }
        )
    return rows


def _pending(args: argparse.Namespace) -> int:
    target = kube.load_target(args.kubeconfig, args.context)
    namespaces = [n.strip() for n in (args.namespace or target.namespace).split(",") if n.strip()]
    rows: list[dict[str, Any]] = []
    with kube.reporting_connection_errors(target), kube.client(target) as client:
        try:
            for namespace in namespaces:
                rows.extend(_awaiting(client, namespace))
        except httpx2.HTTPStatusError as exc:
            print(f"error: {kube.api_error_text(exc)}", file=sys.stderr)
            return 1
    detail = "missing" if args.verbose else None
    output.emit(rows, PENDING_COLUMNS, args.output, empty="no Train awaits approval", detail=detail)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    kube.add_kubeconfig_options(parser)
    parser.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="station namespace (default: the kubeconfig context's)",
    )


def register(subparsers: Any) -> None:
    for command, decision, text in (
        ("approve", "Approve", "approve a Train (bound to its current spec hash)"),
        ("reject", "Reject", "reject a Train (final)"),
    ):
        parser = subparsers.add_parser(command, help=text, description=text)
        parser.add_argument("train", help="the Train's name")
        parser.add_argument(
            "--approver", default=None, help="your Kubernetes user name (default: kubeconfig's)"
        )
        parser.add_argument("--comment", default=None, help="why (kept with the approval)")
        _common(parser)
        parser.set_defaults(handler=lambda args, d=decision: _decide(args, d))
    pending = subparsers.add_parser(
        "pending",
        help="list Trains that wait for approval",
        description="List Trains awaiting approval, with the spec hash an approval must name. "
        "-n takes a comma-separated list of namespaces.",
    )
    _common(pending)
    pending.add_argument("-v", "--verbose", action="store_true", help="show what is missing")
    output.add_output_option(pending)
    pending.set_defaults(handler=_pending)
