"""The gate's own judgement of a signed review: it counts only with a moment, a trusted key and
the image as built, and a hold says why the signed review did not count."""

from __future__ import annotations

from datetime import UTC, datetime

from disclosure_samples import TRUSTED_DIGEST, TRUSTED_IMAGE, gate_policy, manifest, stage_table
from signed_review_kit import new_key, signed, trusted

from pht_contract.wire import ReviewTrust
from pht_station_api.disclosure import GateDecision, Outcome, Rule, gate
from pht_station_api.disclosure.trust import still_trusted, trusted_review

BOARD = new_key("ed25519")
NOW = datetime.now(UTC)


def _decide(
    envelope: str | None, image: str | None = TRUSTED_IMAGE, **policy: object
) -> GateDecision:
    fields = {"trusted_reviewers": [trusted(BOARD)], **policy}
    return gate.evaluate(
        manifest(tables=[stage_table([20, 20, 20])]),
        gate_policy(trusted=False, **fields),
        audited_cohort=60,
        image=image,
        at=NOW,
        signed_review=envelope,
    )


def test_a_signed_review_by_a_trusted_key_releases_what_passes_every_check() -> None:
    decision = _decide(signed(TRUSTED_DIGEST, BOARD))
    assert (decision.outcome, decision.rule) == (Outcome.RELEASED, None)


def test_without_a_moment_or_the_image_as_built_a_signed_review_counts_for_nothing() -> None:
    envelope = signed(TRUSTED_DIGEST, BOARD)
    no_moment = gate.evaluate(
        manifest(tables=[stage_table([20, 20, 20])]),
        gate_policy(trusted=False, trusted_reviewers=[trusted(BOARD)]),
        audited_cohort=60,
        image=TRUSTED_IMAGE,
        signed_review=envelope,
    )
    overridden = _decide(envelope, image=None)
    for decision in (no_moment, overridden):
        assert decision.rule == Rule.STEWARD_REVIEW_REQUIRED


def test_a_hold_says_why_the_signed_review_did_not_count() -> None:
    cases = {
        "signed by a key this station does not trust": _decide(signed(TRUSTED_DIGEST, new_key())),
        "signed by a key this station no longer trusts": _decide(
            signed(TRUSTED_DIGEST, BOARD), trusted_reviewers=[trusted(BOARD, expires_days=-1)]
        ),
        "signed review expired": _decide(signed(TRUSTED_DIGEST, BOARD, end_days=-1, start_days=-9)),
        "signed review of another image": _decide(signed("sha256:" + "9" * 64, BOARD)),
    }
    for why, decision in cases.items():
        assert decision.outcome == Outcome.HELD
        described = [f.describe() for f in decision.findings]
        assert f"StewardReviewRequired ({why}): Held" in described, (why, described)


def test_manual_release_for_all_holds_even_a_validly_signed_review() -> None:
    decision = _decide(signed(TRUSTED_DIGEST, BOARD), manual_release_for_all=True)
    assert decision.rule == Rule.MANUAL_RELEASE_REQUIRED


def test_only_keys_both_policies_hold_unchanged_count_at_the_run_s_end() -> None:
    """The policy as it is at the run's end can take trust away, never add it."""
    envelope, stranger = signed(TRUSTED_DIGEST, BOARD), new_key()
    registered = gate_policy(trusted=False, trusted_reviewers=[trusted(BOARD)])
    kept = still_trusted(registered, ReviewTrust(trusted_reviewers=[trusted(BOARD)]))
    assert trusted_review(kept, TRUSTED_IMAGE, envelope, NOW) is not None
    assert still_trusted(registered, None) == registered
    renamed = ReviewTrust(trusted_reviewers=[trusted(BOARD, name="Renamed board")])
    added = ReviewTrust(trusted_reviewers=[trusted(BOARD), trusted(stranger, "stranger")])
    by_stranger = signed(TRUSTED_DIGEST, stranger)
    assert trusted_review(still_trusted(registered, renamed), TRUSTED_IMAGE, envelope, NOW) is None
    assert trusted_review(still_trusted(registered, added), TRUSTED_IMAGE, by_stranger, NOW) is None
