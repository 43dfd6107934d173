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
import asyncio
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pht_contract import constants
from pht_contract.evaluation import evaluate
from pht_contract.hashing import spec_hash as hash_of
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import TrainSpec
from pht_operator import kubeapi
from pht_operator.kubeapi import ApiError, KubeApi


def _context(kubeconfig: Path | None) -> tuple[KubeApi, str, str]:
    config = kubeapi.load_config(kubeconfig)
    single = config.get()
    if single is None:
        raise SystemExit("error: the kubeconfig has no current context")
    user = getattr(single, "user_name", None) or getattr(single.context, "user", None) or "unknown"
    return KubeApi.from_config(config), single.namespace or "default", str(user)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "steward"


async def _refusal(kube: KubeApi, namespace: str, train: dict[str, Any], admitted: str) -> str:
    """Why an approval of this Train could never count (empty when it could)."""
    try:
        spec = TrainSpec.model_validate(train.get("spec") or {})
    except ValidationError as exc:
        return f"its spec is invalid ({exc.error_count()} problem(s)); it cannot run"
    current = hash_of(spec)
    if current != admitted:
        return (
            f"its spec changed after admission (admitted spec hash {admitted}, current {current}); "
            "it will not run: ask for a new Train"
        )
    body = await kube.get_or_none(kubeapi.POLICIES, namespace, constants.STATION_POLICY_NAME)
    if body is None:
        return f"namespace {namespace} has no StationPolicy {constants.STATION_POLICY_NAME!r}"
    try:
        policy = StationPolicySpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return f"the StationPolicy in {namespace} is invalid"
    decision = evaluate(spec, policy)
    if not decision.admitted:
        return f"the station policy refuses it as it is now [{decision.reason}]: {decision.message}"
    return ""


async def _decide(args: argparse.Namespace, decision: str) -> int:
    kube, default_ns, user = _context(args.kubeconfig)
    namespace = args.namespace or default_ns
    approver = args.approver or user
    try:
        train = await kube.get_or_none(kubeapi.TRAINS, namespace, args.train)
        if train is None:
            print(f"error: Train {namespace}/{args.train} not found", file=sys.stderr)
            return 1
        spec_hash = (train.get("status") or {}).get("specHash")
        if not spec_hash:
            print(
                f"error: Train {args.train} has no spec hash yet (not admitted); nothing to "
                f"{decision.lower()}",
                file=sys.stderr,
            )
            return 1
        if decision == "Approve":
            why = await _refusal(kube, namespace, train, str(spec_hash))
            if why:
                print(
                    f"error: not approving {args.train}: {why}; no approval was recorded",
                    file=sys.stderr,
                )
                return 1
        name = f"{_slug(args.train)[:180]}-{_slug(approver)}-{spec_hash[:8]}"
        body: dict[str, Any] = {
            "apiVersion": constants.GROUP_VERSION,
            "kind": constants.APPROVAL_KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "train": {
                    "name": args.train,
                    "specHash": spec_hash,
                    # Never counts for a later Train re-created under the same name.
                    "uid": train["metadata"]["uid"],
                },
                "decision": decision,
                "approver": approver,
            },
        }
        if args.comment:
            body["spec"]["comment"] = args.comment
        try:
            await kube.create(kubeapi.APPROVALS, namespace, body)
        except ApiError as exc:
            if not exc.conflict:
                print(f"error: {exc.code} {exc.reason}: {exc.message}", file=sys.stderr)
                return 1
            # One decision per approver and spec hash: never report a decision as recorded
            # when the object holds the opposite one.
            existing = await kube.get_or_none(kubeapi.APPROVALS, namespace, name)
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
    finally:
        await kube.aclose()


async def _pending(args: argparse.Namespace) -> int:
    kube, default_ns, _ = _context(args.kubeconfig)
    namespaces = [n.strip() for n in (args.namespace or default_ns).split(",") if n.strip()]
    rows = []
    try:
        for namespace in namespaces:
            for train in await kube.list(kubeapi.TRAINS, namespace):
                status = train.get("status") or {}
                if status.get("summary") != "AwaitingApproval":
                    continue
                spec = train.get("spec") or {}
                requester = spec.get("requester") or {}
                approved = [
                    c for c in status.get("conditions") or [] if c.get("type") == "Approved"
                ]
                rows.append(
                    (
                        namespace,
                        train["metadata"]["name"],
                        str(status.get("specHash", ""))[:12],
                        f"{requester.get('name', '?')} ({requester.get('organisation', '?')})",
                        str(spec.get("image", ""))[:60],
                        approved[0].get("message", "") if approved else "",
                    )
                )
    finally:
        await kube.aclose()
    if not rows:
        print("no Train awaits approval")
        return 0
    header = ("NAMESPACE", "NAME", "SPEC HASH", "REQUESTER", "IMAGE")
    widths = [max(len(r[i]) for r in [header, *[row[:5] for row in rows]]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row[:5], widths, strict=True)))
        if args.verbose and row[5]:
            print(f"    {row[5]}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    parser.add_argument(
        "-n", "--namespace", default=None, help="station namespace (default: the context's)"
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
        parser.set_defaults(
            handler=lambda args, d=decision: asyncio.run(_decide(args, d)),
        )
    pending = subparsers.add_parser(
        "pending",
        help="list Trains that wait for approval",
        description="List Trains awaiting approval, with the spec hash an approval must name.",
    )
    _common(pending)
    pending.add_argument("-v", "--verbose", action="store_true", help="show what is missing")
    pending.set_defaults(handler=lambda args: asyncio.run(_pending(args)))
