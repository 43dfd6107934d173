"""``pht reviews``: the image reviews of a station's policy, with whether each counts now."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_kit import Recorder, write_kubeconfig

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
