"""``pht reviews``: the image reviews of a station's policy, with whether each counts now."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_kit import Recorder, write_kubeconfig
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from signed_review_kit import (
    ALGORITHMS,
    KEY_ADDED_BY,
    Algorithm,
    new_key,
    private_pem,
    public_pem,
    signed,
    signing_key,
    trusted,
)

from pht_cli.main import main
from pht_contract.times import utc_iso, utc_now

POLICY_PATH = "/apis/pht.health-ai.nl/v1alpha1/namespaces/{ns}/stationpolicies/station-policy"
CURRENT = "sha256:" + "c" * 64
EXPIRED = "sha256:" + "e" * 64
FUTURE = "sha256:" + "f" * 64


def _review(digest: str, reviewer: str, start_days: int, end_days: int) -> dict[str, Any]:
    now = utc_now()
    return {
        "digest": digest,
        "reviewer": reviewer,
        "reviewedAt": utc_iso(now + timedelta(days=start_days)),
        "expiresAt": utc_iso(now + timedelta(days=end_days)),
        "notes": f"reviewed by {reviewer}",
        "link": "https://git.example.org/pht/km/-/merge_requests/12",
    }


def _serve_policy(server: Recorder, namespace: str, *reviews: dict[str, Any]) -> None:
    policy = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "StationPolicy",
        "metadata": {"name": "station-policy", "namespace": namespace},
        "spec": {
            "organisations": ["maastro"],
            "dataAccess": {"allowedGraphs": ["urn:pht:graph:a"]},
            "disclosure": {"reviewedImages": list(reviews)},
        },
    }
    server.answer("GET", POLICY_PATH.format(ns=namespace), 200, policy)


def test_reviews_shows_reviewer_dates_and_whether_each_counts(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_policy(
        server,
        "hospital-a",
        _review(CURRENT, "bob", -10, 100),
        _review(EXPIRED, "carol", -400, -40),
        _review(FUTURE, "dave", 5, 50),
    )
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, namespace="hospital-a")
    assert main(["reviews", "--kubeconfig", str(config), "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "DIGEST", "REVIEWER", "REVIEWED", "EXPIRES", "STATE"]
    rows = [line.split() for line in lines[1::2]]
    assert [(r[1], r[2], r[5]) for r in rows] == [
        (CURRENT[:19], "bob", "Current"),
        (EXPIRED[:19], "carol", "Expired"),
        (FUTURE[:19], "dave", "NotYetValid"),
    ]
    assert "merge_requests/12; reviewed by bob" in lines[2]  # -v: the link and notes


def test_reviews_in_json_carry_the_whole_digest_and_expired_flag(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_policy(server, "ns1", _review(EXPIRED, "carol", -300, -1))
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, namespace="ns1")
    assert main(["reviews", "--kubeconfig", str(config), "-o", "json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert (item["digest"], item["reviewer"], item["expired"]) == (EXPIRED, "carol", True)


def test_reviews_with_none_recorded_says_every_result_is_held(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_policy(server, "ns1")
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, namespace="ns1")
    assert main(["reviews", "--kubeconfig", str(config)]) == 0
    assert "every result is held for a steward" in capsys.readouterr().out


# --- signed reviews ------------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64
IMAGE = f"ghcr.io/pht/km:1.0@{DIGEST}"


def _key_files(tmp_path: Path, algorithm: Algorithm) -> tuple[Path, Path, Any]:
    key = new_key(algorithm)
    private, public = tmp_path / f"{algorithm}.key", tmp_path / f"{algorithm}.pub"
    private.write_bytes(private_pem(key))
    public.write_text(public_pem(key))
    return private, public, key


def _sign(tmp_path: Path, private: Path, *extra: str) -> int:
    return main(
        [
            "reviews",
            "sign",
            "--key",
            str(private),
            "--image",
            IMAGE,
            "--reviewer",
            "Consortium review board",
            "--days",
            "90",
            "--link",
            "https://git.example.org/pht/km/-/merge_requests/12",
            *extra,
        ]
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sign_makes_an_envelope_securesystemslib_verifies_and_never_prints_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], algorithm: Algorithm
) -> None:
    private, _, key = _key_files(tmp_path, algorithm)
    assert _sign(tmp_path, private) == 0
    captured = capsys.readouterr()
    pem_body = "".join(private.read_text().splitlines()[1:-1])
    assert pem_body[:16] not in captured.out + captured.err
    envelope = Envelope.from_dict(json.loads(captured.out))
    keyid = signing_key(key).key_id
    assert list(envelope.verify([SSlibKey.from_crypto(key.public_key(), keyid=keyid)], 1))
    statement = json.loads(envelope.payload)
    assert statement["subject"] == [{"name": "ghcr.io/pht/km", "digest": {"sha256": "a" * 64}}]
    assert statement["predicate"]["reviewer"] == "Consortium review board"


def test_verify_against_a_public_key_and_the_station_keys(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public, key = _key_files(tmp_path, "ed25519")
    envelope = tmp_path / "review.json"
    assert _sign(tmp_path, private, "--out", str(envelope)) == 0
    assert str(envelope) in capsys.readouterr().out
    assert main(["reviews", "verify", str(envelope), "--public-key", str(public)]) == 0
    assert capsys.readouterr().out.startswith("Valid: reviewed by Consortium review board")
    other = "sha256:" + "b" * 64
    args = [
        "reviews",
        "verify",
        str(envelope),
        "--public-key",
        str(public),
        "--image",
        f"x@{other}",
    ]
    assert main(args) == 1
    assert capsys.readouterr().out.startswith("OtherImage: ")

    policy = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "StationPolicy",
        "metadata": {"name": "station-policy", "namespace": "ns1"},
        "spec": {
            "organisations": ["maastro"],
            "dataAccess": {"allowedGraphs": ["urn:pht:graph:a"]},
            "disclosure": {"trustedReviewers": [trusted(key, "Board").wire()]},
        },
    }
    server.answer("GET", POLICY_PATH.format(ns="ns1"), 200, policy)
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, namespace="ns1")
    verify = ["reviews", "verify", str(envelope), "--kubeconfig", str(config), "-o", "json"]
    assert main(verify) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["state"], report["keyName"]) == ("Valid", "Board")
    assert report["keyId"] == signing_key(key).key_id

    stranger = tmp_path / "stranger.json"
    stranger.write_text(signed(DIGEST, new_key()))
    assert main(["reviews", "verify", str(stranger), "--kubeconfig", str(config)]) == 1
    assert "signed by a key this station does not trust" in capsys.readouterr().out


def test_reviews_lists_the_trusted_reviewer_keys(
    server: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board, old = new_key(), new_key("ed25519")
    _serve_policy_with_keys(
        server, "ns1", [trusted(board, "Board").wire(), trusted(old, "Old board", -1).wire()]
    )
    config = write_kubeconfig(tmp_path / "k.yaml", server.url, namespace="ns1")
    assert main(["reviews", "--kubeconfig", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = "NAMESPACE TRUSTED REVIEWER KEY ID ALGORITHM ADDED BY EXPIRES STATE"
    assert lines[0].split() == header.split()
    assert "Board" in lines[1] and "ecdsa-p256" in lines[1] and lines[1].endswith("Current")
    assert KEY_ADDED_BY in lines[1]
    assert "Old board" in lines[2] and lines[2].endswith("Expired")
    assert main(["reviews", "--kubeconfig", str(config), "-o", "json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [(i["kind"], i["name"]) for i in items] == [
        ("TrustedReviewer", "Board"),
        ("TrustedReviewer", "Old board"),
    ]
    assert items[0]["keyId"] == signing_key(board).key_id
    assert items[0]["addedBy"] == KEY_ADDED_BY


def _serve_policy_with_keys(server: Recorder, namespace: str, keys: list[Any]) -> None:
    policy = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "StationPolicy",
        "metadata": {"name": "station-policy", "namespace": namespace},
        "spec": {
            "organisations": ["maastro"],
            "dataAccess": {"allowedGraphs": ["urn:pht:graph:a"]},
            "disclosure": {"trustedReviewers": keys},
        },
    }
    server.answer("GET", POLICY_PATH.format(ns=namespace), 200, policy)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--key", "{public}"], "this is a public key"),
        (["--key", "{missing}"], "cannot read the key file"),
        (["--image", "ghcr.io/pht/km:1.0"], "must be pinned by digest"),
        (["--days", "400"], "at most 366 days"),
        (["--link", "not a link"], "link"),
    ],
)
def test_sign_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    private, public, _ = _key_files(tmp_path, "ecdsa-p256")
    base = {
        "--key": str(private),
        "--image": IMAGE,
        "--reviewer": "board",
        "--days": "30",
        "--notes": "read it",
    }
    given = dict(zip(argv[::2], argv[1::2], strict=True))
    for option, value in given.items():
        base[option] = value.format(public=public, missing=tmp_path / "none.pem")
    words = ["reviews", "sign", *[w for pair in base.items() for w in pair]]
    assert main(words) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_verify_refuses_a_malformed_envelope_or_a_private_key_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public, key = _key_files(tmp_path, "ecdsa-p256")
    broken = tmp_path / "broken.json"
    broken.write_text('{"payload": "e30="}')
    assert main(["reviews", "verify", str(broken), "--public-key", str(public)]) == 2
    assert "envelope.payloadType: Field required" in capsys.readouterr().err
    envelope = tmp_path / "review.json"
    envelope.write_text(signed(DIGEST, key))
    assert main(["reviews", "verify", str(envelope), "--public-key", str(private)]) == 2
    err = capsys.readouterr().err
    assert "this is a private key" in err
    assert "".join(private.read_text().splitlines()[1:-1])[:16] not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--days", "999999999"], "--days must be 1 to 366"),
        (["--days", "0"], "--days must be 1 to 366"),
        (["--reviewed-at", "9999-12-31T00:00:00Z", "--days", "5"], "too far in the future"),
    ],
    ids=["days-beyond-the-calendar", "no-days", "reviewed-at-the-end-of-time"],
)
def test_sign_refuses_dates_beyond_the_calendar_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    private, _, _ = _key_files(tmp_path, "ed25519")
    words = ["reviews", "sign", "--key", str(private), "--image", IMAGE, "--reviewer", "board"]
    assert main([*words, "--notes", "read it", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_sign_never_overwrites_the_key_with_the_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _, _ = _key_files(tmp_path, "ecdsa-p256")
    before = private.read_bytes()
    assert _sign(tmp_path, private, "--out", str(tmp_path / "." / private.name)) == 2
    assert "--out is the key file" in capsys.readouterr().err
    assert private.read_bytes() == before


def test_sign_warns_when_others_can_read_the_private_key_and_never_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _, _ = _key_files(tmp_path, "ed25519")
    pem_body = "".join(private.read_text().splitlines()[1:-1])
    private.chmod(0o644)
    assert _sign(tmp_path, private) == 0
    shared = capsys.readouterr()
    assert "other users of this machine can read the private key" in shared.err
    assert "0644" in shared.err and pem_body[:16] not in shared.out + shared.err
    private.chmod(0o600)
    assert _sign(tmp_path, private) == 0
    assert capsys.readouterr().err == ""
