"""Release by default is off: only images a steward reviewed are released without a steward.

The train is untrusted code and the gate's checks are heuristics an author can study, so a
result that passes every check is still held for a steward (``StewardReviewRequired``) —
unless the policy lists the train's image digest in ``autoReleaseImageDigests``, which is the
steward saying "I reviewed this code and trust what it computes". Only a digest counts: a tag
can be moved to other code after the review. And only the image as built counts: a run whose
Train overrides ``command`` or ``args``, or mounts an input artifact, is judged as an unreviewed
image (the station API is told so at registration).
"""

import re
from typing import Final

from pht_contract.policies import DisclosurePolicy

DIGEST: Final = re.compile(r"sha256:[a-f0-9]{64}")


def image_digest(image: str | None) -> str | None:
    """The ``sha256:…`` digest an image reference is pinned to, if it is pinned."""
    if not image or "@" not in image:
        return None
    digest = image.rsplit("@", 1)[1]
    return digest if DIGEST.fullmatch(digest) else None


def reviewed_for_auto_release(policy: DisclosurePolicy, image: str | None) -> bool:
    digest = image_digest(image)
    return digest is not None and digest in policy.auto_release_image_digests
