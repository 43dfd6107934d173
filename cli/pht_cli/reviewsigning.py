"""``pht reviews sign`` and ``pht reviews verify``: signed image reviews on the reviewer's side.

A review board signs its review of an image digest once (``sign``, with its private key); a
researcher attaches the envelope to a Train as ``spec.signedReview``; every station whose
policy lists the board's public key in ``trustedReviewers`` counts it. ``verify`` says what a
station would make of an envelope now: against a station's trusted keys (from its
StationPolicy) or against a public key file. The private key is read, used and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
from pydantic import ValidationError

from pht_cli import kube
from pht_cli.errors import CliError, one_line
from pht_contract import constants
from pht_contract.policies import (
    MAX_REVIEW_DAYS,
    ImageReview,
    StationPolicySpec,
    TrustedReviewer,
)
from pht_contract.reviewerkeys import ReviewerKeyError, load_private_key
from pht_contract.signedreviews import (
    SignedReviewError,
    check_signed_review,
    parse_signed_review,
    sign_review,
)
from pht_contract.times import parse_utc, utc_iso, utc_now
from pht_contract.trains import MAX_SIGNED_REVIEW_BYTES

#: The longest key file read (PEM keys of the accepted kinds are far smaller).
MAX_KEY_FILE_BYTES = 16 * 1024


def _read(path: str, limit: int, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise CliError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise CliError(f"the {what} {path} is larger than {limit} bytes")
    return data


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    why = str(first.get("msg")).removeprefix("Value error, ")
    return f"{where}: {why}" if where else why


def _image_parts(image: str) -> tuple[str, str]:
    """The image's repository (no tag) and its ``sha256:`` digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    if not digest.startswith("sha256:"):
        raise CliError(
            f"--image must be pinned by digest (name@sha256:…): a review counts only for a "
            f"digest, not {image!r}"
        )
    return name, digest


def _sign(args: argparse.Namespace) -> int:
    name, digest = _image_parts(args.image)
    try:
        key = load_private_key(_read(args.key, MAX_KEY_FILE_BYTES, "key file"))
    except ReviewerKeyError as exc:
        raise CliError(str(exc)) from None
    reviewed_at = args.reviewed_at or utc_iso(utc_now())
    if args.expires_at:
        expires_at = args.expires_at
    else:
        start = parse_utc(reviewed_at)
        if start is None:
            raise CliError("--reviewed-at must be an RFC 3339 timestamp, e.g. 2026-05-01T09:00:00Z")
        if not 1 <= args.days <= MAX_REVIEW_DAYS:
            raise CliError(
                f"--days must be 1 to {MAX_REVIEW_DAYS}: a review counts for at most "
                f"{MAX_REVIEW_DAYS} days"
            )
        try:
            expires_at = utc_iso(start + timedelta(days=args.days))
        except OverflowError:
            raise CliError("--reviewed-at is too far in the future to review anything") from None
    try:
        review = ImageReview(
            digest=digest,
            reviewer=args.reviewer,
            reviewed_at=reviewed_at,
            expires_at=expires_at,
            notes=args.notes,
            link=args.link,
        )
    except ValidationError as exc:
        raise CliError(f"the review is not valid: {_first_error(exc)}") from None
    envelope = sign_review(review, name, key)
    if args.out:
        if Path(args.out).resolve() == Path(args.key).resolve():
            raise CliError("--out is the key file: write the signed review to another file")
        try:
            Path(args.out).write_text(envelope)
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror}") from None
        print(f"signed review of {digest} written to {args.out} (key id {key.key_id})")
    else:
        print(envelope, end="")
    _warn_if_shared(args.key)
    return 0


def _warn_if_shared(path: str) -> None:
    """Say so when other users of this machine can read the private key."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(
            f"warning: other users of this machine can read the private key {path} "
            f"(mode {stat.S_IMODE(mode):04o}): keep it to yourself with chmod 600",
            file=sys.stderr,
        )


def _station_keys(args: argparse.Namespace) -> list[TrustedReviewer]:
    target = kube.load_target(args.kubeconfig, args.context)
    namespace = args.namespace or target.namespace
    with kube.reporting_connection_errors(target), kube.client(target) as client:
        try:
            body = kube.get_or_none(client, kube.POLICIES, namespace, constants.STATION_POLICY_NAME)
        except httpx2.HTTPStatusError as exc:
            raise CliError(kube.api_error_text(exc)) from None
    if body is None:
        raise CliError(f"namespace {namespace} has no StationPolicy: it trusts no reviewer key")
    try:
        policy = StationPolicySpec.model_validate(body.get("spec") or {})
    except ValidationError:
        raise CliError(f"the StationPolicy in {namespace} is invalid") from None
    return list(policy.disclosure.trusted_reviewers)


def _given_key(path: str) -> list[TrustedReviewer]:
    pem = _read(path, MAX_KEY_FILE_BYTES, "public key file")
    try:
        return [
            TrustedReviewer(
                name=Path(path).name,
                added_by="you (--public-key)",
                public_key=pem.decode("utf-8", "replace"),
            )
        ]
    except ValidationError as exc:
        raise CliError(f"{path}: {_first_error(exc)}") from None


def _verify(args: argparse.Namespace) -> int:
    raw = _read(args.envelope, MAX_SIGNED_REVIEW_BYTES, "signed review")
    text = raw.decode("utf-8", "replace")
    try:
        signed = parse_signed_review(text)
    except SignedReviewError as exc:
        raise CliError(f"{args.envelope}: {exc}") from None
    digest = _image_parts(args.image)[1] if args.image else signed.review.digest
    trusted = _given_key(args.public_key) if args.public_key else _station_keys(args)
    check = check_signed_review(text, trusted, digest, utc_now())
    report: dict[str, Any] = {
        "state": check.state.value,
        "message": check.message,
        "digest": signed.review.digest,
        "reviewer": signed.review.reviewer,
        "reviewedAt": signed.review.reviewed_at,
        "expiresAt": signed.review.expires_at,
        "keyName": check.signer.name if check.signer is not None else None,
        "keyId": check.key_id,
        "until": check.until,
        "envelopeSha256": signed.sha256,
    }
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(one_line(f"{check.state.value}: {check.message}"))
        if check.key_id:
            print(f"key id: {check.key_id}")
    return 0 if check.counts else 1


def register(commands: Any) -> None:
    """Add ``sign`` and ``verify`` under ``pht reviews``."""
    sign = commands.add_parser(
        "sign",
        help="sign a review of an image digest with a reviewer's private key",
        description="Write a DSSE envelope (an in-toto statement of the review) signed with an "
        "ECDSA P-256 or Ed25519 private key, for a Train's spec.signedReview. Stations count it "
        "when their StationPolicy lists the public key in spec.disclosure.trustedReviewers.",
    )
    sign.add_argument("--key", required=True, help="the reviewer's private key (PEM file)")
    sign.add_argument("--image", required=True, help="the reviewed image, name@sha256:…")
    sign.add_argument("--reviewer", required=True, help="who reviewed the image")
    sign.add_argument(
        "--reviewed-at", default=None, help="when it was reviewed (RFC 3339; default: now)"
    )
    until = sign.add_mutually_exclusive_group(required=True)
    until.add_argument("--expires-at", default=None, help="when the review stops counting")
    until.add_argument(
        "--days", type=int, default=None, help="days the review counts (at most 366)"
    )
    sign.add_argument("--notes", default=None, help="what was reviewed and the conclusion")
    sign.add_argument("--link", default=None, help="where the review is written down")
    sign.add_argument("--out", default=None, help="write the envelope here (default: stdout)")
    sign.set_defaults(handler=_sign)

    verify = commands.add_parser(
        "verify",
        help="check a signed review against a station's trusted keys or a public key",
        description="Say what a station makes of a signed review now: Valid, UntrustedKey, "
        "InvalidSignature, KeyExpired, OtherImage, ReviewExpired or NotYetValid (exit 0 only "
        "when Valid). Without --public-key the keys are the StationPolicy's trustedReviewers.",
    )
    verify.add_argument("envelope", help="the signed review (a DSSE envelope, JSON file)")
    verify.add_argument(
        "--public-key", default=None, help="verify with this public key (PEM file) instead"
    )
    verify.add_argument(
        "--image", default=None, help="the Train's image (name@sha256:…); default: the review's"
    )
    kube.add_kubeconfig_options(verify)
    verify.add_argument(
        "-n", "--namespace", default=None, help="station namespace (default: the context's)"
    )
    verify.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="text or json"
    )
    verify.set_defaults(handler=_verify)
