"""A Train's signed review: a malformed one is refused at admission; a well-formed one, whatever
its key, is admitted and handed to the station API with the registration (the gate judges it)."""

from __future__ import annotations

import json

from operator_harness import DIGEST, Harness, condition
from signed_review_kit import new_key, signed


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
