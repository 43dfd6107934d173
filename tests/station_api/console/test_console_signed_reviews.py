"""The approval page says how the station judges a Train's signed image review, and by whom."""

from __future__ import annotations

from typing import Any

import pytest
from signed_review_kit import new_key, signed, trusted

from pht_station_api.console.i18n import LANGUAGES, Translator
from pht_station_api.console.rendering import ENVIRONMENT
from pht_station_api.console.views import pending_train

DIGEST = "sha256:" + "c" * 64
BOARD = new_key()


def _train(envelope: str | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": f"ghcr.io/pht/km@{DIGEST}",
        "purpose": "survival by stage",
        "requester": {"name": "R", "organisation": "maastro", "contact": "r@example.org"},
        "graphs": ["urn:pht:graph:a"],
        **spec,
    }
    if envelope is not None:
        body["signedReview"] = envelope
    return {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "Train",
        "metadata": {"name": "km", "namespace": "pht-requests", "uid": "u1"},
        "spec": body,
        "status": {"specHash": "a" * 64},
    }


def _policy(**disclosure: Any) -> dict[str, Any]:
    return {
        "spec": {
            "organisations": ["maastro"],
            "dataAccess": {"allowedGraphs": ["urn:pht:graph:a"]},
            "disclosure": {
                "trustedReviewers": [
                    trusted(BOARD, "Consortium board", **disclosure).wire(),
                ]
            },
        }
    }


def _page(train: dict[str, Any], policy: dict[str, Any], language: str = "en") -> str:
    item = pending_train(train, policy, [])
    return ENVIRONMENT.get_template("approval.html").render(
        t=Translator(language),
        lang=language,
        languages=LANGUAGES,
        path="/console/approvals/pht-requests/km",
        user="sam",
        csrf_token="x",
        notice=None,
        failure=None,
        item=item,
        awaiting=True,
    )


def test_a_valid_signed_review_shows_reviewer_key_and_expiry() -> None:
    envelope = signed(DIGEST, BOARD, reviewer="Dr. <b>Chair</b>")
    item = pending_train(_train(envelope), _policy(), [])
    assert item.signed_review is not None
    assert (item.signed_review.state, item.signed_review.key_name) == ("Valid", "Consortium board")
    html = _page(_train(envelope), _policy())
    assert "signed-review-Valid" in html
    assert (
        "reviewed by Dr. &lt;b&gt;Chair&lt;/b&gt;, signed with the key of Consortium board" in html
    )
    assert item.signed_review.until in html
    assert "<b>Chair" not in html


@pytest.mark.parametrize(
    ("envelope", "policy", "state", "text"),
    [
        (
            lambda: signed(DIGEST, new_key()),
            {},
            "UntrustedKey",
            "signed by a key this station does not trust",
        ),
        (
            lambda: signed(DIGEST, BOARD),
            {"expires_days": -1},
            "KeyExpired",
            "which this station no longer trusts",
        ),
        (
            lambda: signed(DIGEST, BOARD, start_days=-20, end_days=-2),
            {},
            "ReviewExpired",
            "expired: reviewed by",
        ),
        (lambda: signed("sha256:" + "d" * 64, BOARD), {}, "OtherImage", "another image"),
        (lambda: "{}", {}, "Malformed", "not a readable signed review"),
    ],
)
def test_a_signed_review_that_does_not_count_says_why(
    envelope: Any, policy: dict[str, Any], state: str, text: str
) -> None:
    train = _train(envelope())
    item = pending_train(train, _policy(**policy), [])
    assert item.signed_review is not None and item.signed_review.state == state
    assert text in _page(train, _policy(**policy))


def test_a_changed_signature_reads_invalid_in_both_languages() -> None:
    import json

    envelope = json.loads(signed(DIGEST, BOARD))
    sig = envelope["signatures"][0]["sig"]
    envelope["signatures"][0]["sig"] = ("B" if sig[0] != "B" else "C") + sig[1:]
    train = _train(json.dumps(envelope))
    assert "signature invalid" in _page(train, _policy())
    assert "handtekening ongeldig" in _page(train, _policy(), "nl")


def test_a_valid_signed_review_of_a_train_that_changes_the_command_does_not_read_valid() -> None:
    train = _train(signed(DIGEST, BOARD), command=["python", "-c", "print(1)"])
    item = pending_train(train, _policy(), [])
    assert item.signed_review is not None and item.signed_review.state == "NotAsBuilt"
    assert "this Train changes the image" in _page(train, _policy())


def test_without_a_signed_review_the_page_shows_no_signed_review_line() -> None:
    item = pending_train(_train(None), _policy(), [])
    assert item.signed_review is None
    assert "signed-review" not in _page(_train(None), _policy())
