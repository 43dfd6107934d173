"""Release by default is off: only images a steward reviewed are released without a steward.

The train is untrusted code and the gate's checks are heuristics an author can study, so a
result that passes every check is still held for a steward (``StewardReviewRequired``) —
unless the admitting policy records a review of the train's image digest in
``reviewedImages``: the steward saying "I reviewed this code and trust what it computes", with
their name, the date, their notes or a link, and an expiry. Only a digest counts: a tag can be
moved to other code after the review. Only a review that counts at the moment of the decision
counts: one dated in the future or already expired is no review. And only the image as built
counts: a run whose Train overrides ``command`` or ``args``, or mounts an input artifact, is
judged as an unreviewed image (the station API is told so at registration).

A review signed by a reviewer key the policy lists in ``trustedReviewers`` (the Train carries
it in ``spec.signedReview``) counts the same way, under the same conditions, and also only
while the station trusts the key.
"""

import hashlib
import re
from datetime import datetime
from typing import Final

from pht_contract.policies import DisclosurePolicy, ImageReview
from pht_contract.signedreviews import SignedReviewCheck, SignedReviewState, check_signed_review
from pht_contract.wire import DetailValue, ReviewTrust

DIGEST: Final = re.compile(r"sha256:[a-f0-9]{64}")

#: Why a Train's signed review did not count, as the gate's finding names it (fixed phrases:
#: never the envelope's own text).
NOT_COUNTED: Final = {
    SignedReviewState.MALFORMED: "signed review unreadable",
    SignedReviewState.UNTRUSTED_KEY: "signed by a key this station does not trust",
    SignedReviewState.INVALID_SIGNATURE: "signed review's signature invalid",
    SignedReviewState.KEY_EXPIRED: "signed by a key this station no longer trusts",
    SignedReviewState.OTHER_IMAGE: "signed review of another image",
    SignedReviewState.REVIEW_EXPIRED: "signed review expired",
    SignedReviewState.NOT_YET_VALID: "signed review dated in the future",
}
#: A signed review of a run that does not start the image as built (or without a moment).
NOT_AS_BUILT: Final = "signed review does not cover a run that changes the image's command"


def image_digest(image: str | None) -> str | None:
    """The ``sha256:…`` digest an image reference is pinned to, if it is pinned."""
    if not image or "@" not in image:
        return None
    digest = image.rsplit("@", 1)[1]
    return digest if DIGEST.fullmatch(digest) else None


def review_for(
    policy: DisclosurePolicy, image: str | None, moment: datetime | None
) -> ImageReview | None:
    """The review of ``image``'s digest that counts at ``moment`` (the one that lasts
    longest when several do); ``None`` without a digest, a moment, or a review that counts."""
    digest = image_digest(image)
    if digest is None or moment is None:
        return None
    counting = [r for r in policy.reviewed_images if r.digest == digest and r.counts_at(moment)]
    return max(counting, key=lambda r: r.expires_at, default=None)


def still_trusted(policy: DisclosurePolicy, now: ReviewTrust | None) -> DisclosurePolicy:
    """``policy`` (the one a run was registered with) keeping only the reviews and reviewer
    keys the station's policy still holds, unchanged, at the run's end (``now``): a steward
    who withdraws a review or a key stops it counting for runs already under way."""
    if now is None:
        return policy
    return policy.model_copy(
        update={
            "reviewed_images": [r for r in policy.reviewed_images if r in now.reviewed_images],
            "trusted_reviewers": [
                k for k in policy.trusted_reviewers if k in now.trusted_reviewers
            ],
        }
    )


def signed_review_check(
    policy: DisclosurePolicy, image: str | None, envelope: str | None, moment: datetime
) -> SignedReviewCheck | None:
    """The verdict on a Train's signed review against the policy's trusted reviewer keys for
    ``image`` at ``moment``; ``None`` when the Train carries none."""
    if envelope is None:
        return None
    return check_signed_review(envelope, policy.trusted_reviewers, image_digest(image), moment)


def trusted_review(
    policy: DisclosurePolicy, image: str | None, envelope: str | None, moment: datetime | None
) -> ImageReview | SignedReviewCheck | None:
    """What lets a result of ``image`` skip a steward at ``moment``: the policy's review of
    its digest, else a signed review that counts; ``None`` when neither does."""
    review = review_for(policy, image, moment)
    if review is not None or moment is None:
        return review
    check = signed_review_check(policy, image, envelope, moment)
    return check if check is not None and check.counts else None


def why_not_counted(
    policy: DisclosurePolicy, image: str | None, envelope: str | None, moment: datetime | None
) -> str | None:
    """Why the Train's signed review did not let its result skip a steward; ``None`` when it
    carries none (or when it counts)."""
    if envelope is None:
        return None
    if image_digest(image) is None or moment is None:
        return NOT_AS_BUILT
    check = signed_review_check(policy, image, envelope, moment)
    return None if check is None or check.counts else NOT_COUNTED[check.state]


def review_record(trust: ImageReview | SignedReviewCheck) -> dict[str, DetailValue]:
    """What the provenance chain keeps of the review behind an automatic release: who, when,
    until when, the link, and the notes' hash (the text stays in the policy's history); for
    a signed review also the key that signed it and who added it, the envelope's hash and the signed
    statement's (the same for every copy of the review, however its envelope is spelled)."""
    if isinstance(trust, SignedReviewCheck):
        assert trust.review is not None and trust.signer is not None
        record = _review_facts(trust.review.review)
        record["reviewKeyId"] = trust.key_id
        record["reviewKeyName"] = trust.signer.name
        record["reviewKeyAddedBy"] = trust.signer.added_by
        record["reviewEnvelopeSha256"] = trust.review.sha256
        record["reviewStatementSha256"] = trust.review.payload_sha256
        return record
    return _review_facts(trust)


def _review_facts(review: ImageReview) -> dict[str, DetailValue]:
    record: dict[str, DetailValue] = {
        "reviewDigest": review.digest,
        "reviewer": review.reviewer,
        "reviewedAt": review.reviewed_at,
        "reviewExpiresAt": review.expires_at,
    }
    if review.link is not None:
        record["reviewLink"] = review.link
    if review.notes is not None:
        record["reviewNotesSha256"] = hashlib.sha256(review.notes.encode()).hexdigest()
    return record
