"""``pht reviews``: the image reviews a station's policy records, and whether each counts now.

A review is an entry of the StationPolicy's ``spec.disclosure.reviewedImages``: the image digest,
the steward who reviewed it (bound to their Kubernetes identity by the chart's admission policy),
when, their notes or a link, and the expiry. Results of a reviewed digest that pass every check
of the disclosure gate are released without a steward while the review counts; an expired
review (or one dated in the future) counts for nothing, and such results are held.

The policy's ``spec.disclosure.trustedReviewers`` are listed after the reviews: the reviewer
keys whose signed reviews (a Train's ``spec.signedReview``) count the same way while the key
is trusted. ``pht reviews sign`` and ``pht reviews verify`` are in :mod:`pht_cli.reviewsigning`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

import httpx2
import lightkube
from pydantic import ValidationError

from pht_cli import kube, output, reviewsigning
from pht_contract import constants
from pht_contract.policies import ImageReview, StationPolicySpec, TrustedReviewer
from pht_contract.times import parse_utc, utc_now

REVIEW_COLUMNS = (
    output.Column("NAMESPACE", "namespace"),
    output.Column("DIGEST", "digest", width=19),
    output.Column("REVIEWER", "reviewer"),
    output.Column("REVIEWED", "reviewedAt"),
    output.Column("EXPIRES", "expiresAt"),
    output.Column("STATE", "state"),
)
KEY_COLUMNS = (
    output.Column("NAMESPACE", "namespace"),
    output.Column("TRUSTED REVIEWER", "name"),
    output.Column("KEY ID", "keyId", width=19),
    output.Column("ALGORITHM", "algorithm"),
    output.Column("ADDED BY", "addedBy"),
    output.Column("EXPIRES", "expiresAt"),
    output.Column("STATE", "state"),
)


def review_state(review: ImageReview, moment: datetime) -> str:
    """``Current``, ``Expired``, or ``NotYetValid`` (dated after ``moment``)."""
    if review.counts_at(moment):
        return "Current"
    expires = parse_utc(review.expires_at)
    return "Expired" if expires is not None and expires <= moment else "NotYetValid"


def _key_row(namespace: str, reviewer: TrustedReviewer, moment: datetime) -> dict[str, Any]:
    key = reviewer.key()
    return {
        "kind": "TrustedReviewer",
        "namespace": namespace,
        "name": reviewer.name,
        "keyId": key.key_id,
        "algorithm": key.algorithm,
        "addedBy": reviewer.added_by,
        "expiresAt": reviewer.expires_at or "never",
        "state": "Current" if reviewer.counts_at(moment) else "Expired",
    }


def _rows(
    client: lightkube.Client, namespace: str, moment: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    body = kube.get_or_none(client, kube.POLICIES, namespace, constants.STATION_POLICY_NAME)
    if body is None:
        return [], []
    try:
        policy = StationPolicySpec.model_validate(body.get("spec") or {})
    except ValidationError:
        print(
            f"warning: the StationPolicy in {namespace} is invalid; its reviews are not shown",
            file=sys.stderr,
        )
        return [], []
    keys = [_key_row(namespace, r, moment) for r in policy.disclosure.trusted_reviewers]
    return [
        {
            "kind": "ImageReview",
            "namespace": namespace,
            "digest": review.digest,
            "reviewer": review.reviewer,
            "reviewedAt": review.reviewed_at,
            "expiresAt": review.expires_at,
            "state": review_state(review, moment),
            "expired": review_state(review, moment) == "Expired",
            "notes": review.notes,
            "link": review.link,
        }
        for review in policy.disclosure.reviewed_images
    ], keys


def _reviews(args: argparse.Namespace) -> int:
    target = kube.load_target(args.kubeconfig, args.context)
    namespaces = [n.strip() for n in (args.namespace or target.namespace).split(",") if n.strip()]
    moment = utc_now()
    rows: list[dict[str, Any]] = []
    keys: list[dict[str, Any]] = []
    with kube.reporting_connection_errors(target), kube.client(target) as client:
        try:
            for namespace in namespaces:
                reviews, trusted = _rows(client, namespace, moment)
                rows.extend(reviews)
                keys.extend(trusted)
        except httpx2.HTTPStatusError as exc:
            print(f"error: {kube.api_error_text(exc)}", file=sys.stderr)
            return 1
    if args.verbose:
        for row in rows:
            row["why"] = "; ".join(str(row[k]) for k in ("link", "notes") if row[k])
    if args.output in ("json", "yaml"):
        # One list: each item says by ``kind`` whether it is a review or a trusted key.
        output.emit([*rows, *keys], REVIEW_COLUMNS, args.output, empty="")
        return 0
    if rows or not keys:
        output.emit(
            rows,
            REVIEW_COLUMNS,
            args.output,
            empty="no image review is recorded: every result is held for a steward",
            detail="why" if args.verbose else None,
        )
    if keys:
        if rows:
            print()
        output.emit(keys, KEY_COLUMNS, args.output, empty="")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reviews",
        help="image reviews and trusted reviewer keys; sign and verify",
        description="List the image reviews recorded in the StationPolicy "
        "(spec.disclosure.reviewedImages): digest, reviewer, date, expiry and whether each "
        "counts now, then the reviewer keys it trusts (spec.disclosure.trustedReviewers). "
        "-n takes a comma-separated list of namespaces. 'sign' and 'verify' handle signed "
        "reviews.",
    )
    kube.add_kubeconfig_options(parser)
    parser.add_argument(
        "-n", "--namespace", default=None, help="station namespace (default: the context's)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the notes and link")
    output.add_output_option(parser)
    parser.set_defaults(handler=_reviews)
    reviewsigning.register(parser.add_subparsers(dest="reviews_command", metavar="COMMAND"))
