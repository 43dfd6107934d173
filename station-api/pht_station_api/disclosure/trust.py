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
"""

import hashlib
import re
from datetime import datetime
from typing import Final

from pht_contract.policies import DisclosurePolicy, ImageReview
from pht_contract.wire import DetailValue

DIGEST: Final = re.compile(r"sha256:[a-f0-9]{64}")


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


def review_record(review: ImageReview) -> dict[str, DetailValue]:
    """What the provenance chain keeps of the review behind an automatic release: who, when,
    until when, the link, and the notes' hash (the text stays in the policy's history)."""
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
