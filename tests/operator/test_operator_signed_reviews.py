"""A Train's signed review: a malformed one is refused at admission; a well-formed one, whatever
its key, is admitted and handed to the station API with the registration (the gate judges it)."""

from __future__ import annotations

import json

from operator_harness import DIGEST, RUN_NS, Harness, condition
from signed_review_kit import new_key, signed, trusted


async def test_a_malformed_signed_review_refuses_the_train_with_its_reason(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    edited = json.loads(signed(DIGEST, new_key()))
    edited["payloadType"] = "application/json"
    cases = {
        "not-an-envelope": ("a signature, trust me", "not a JSON DSSE envelope"),
        "other-type": (json.dumps(edited), "payloadType must be application/vnd.in-toto+json"),
        "other-image": (signed("sha256:" + "0" * 64, new_key()), "not of this Train's image"),
    }
    for name, (envelope, _) in cases.items():
        await harness.create_train(name, signedReview=envelope)
    for name, (_, fragment) in cases.items():
        body = await harness.wait_summary(name, "Rejected")
        admitted = condition(body, "Admitted")
        assert admitted is not None
        assert (admitted["status"], admitted["reason"]) == ("False", "InvalidSignedReview")
        assert admitted["message"].startswith("spec.signedReview: "), admitted["message"]
        assert fragment in admitted["message"], admitted["message"]
    assert harness.station.registrations == {}


async def test_a_review_signed_by_any_key_is_admitted_and_registered_with_the_train(
    harness: Harness,
) -> None:
    await harness.apply_policy()
    envelope = signed(DIGEST, new_key())
    await harness.create_train("signed", signedReview=envelope)
    await harness.wait_summary("signed", "Queued")
    (registration,) = harness.station.registrations.values()
    assert registration.signed_review == envelope
    assert registration.image_runs_as_built


async def test_the_completion_carries_the_reviewer_keys_the_policy_holds_at_the_run_s_end(
    harness: Harness,
) -> None:
    """A key a steward removes while the run goes on must not count at its end: the operator
    tells the station API which keys the policy still holds."""
    board, spare = new_key(), new_key("ed25519")
    keys = [trusted(board, "board").wire(), trusted(spare, "spare").wire()]
    await harness.apply_policy(disclosure={"trustedReviewers": keys})
    await harness.create_train("signed", signedReview=signed(DIGEST, board))
    await harness.wait_summary("signed", "Queued")
    (registration,) = harness.station.registrations.values()
    assert len(registration.policy.disclosure.trusted_reviewers) == 2
    await harness.apply_policy(disclosure={"trustedReviewers": keys[1:]})
    job = harness.job_name("signed")
    await harness.jobs.schedule(RUN_NS, job)
    await harness.jobs.run(RUN_NS, job)
    await harness.jobs.succeed(RUN_NS, job)
    await harness.wait_for(lambda: registration.uid in harness.station.completions)
    trust_now = harness.station.completions[registration.uid].trust_now
    assert trust_now is not None
    assert [k.name for k in trust_now.trusted_reviewers] == ["spare"]
