"""The reasons a failed train may show its researcher, and how a pod's message is read.

A train that fails on purpose (``pht_train.fail("TooFewPatients")``, or an SDK error inside
``pht_train.run``) writes its CamelCase reason to ``/dev/termination-log`` and as its last
stderr line (``pht-train-failure: <Reason>``); the kubelet puts it in the pod's
``status.containerStatuses[].state.terminated.message``. The reason is chosen by the train's
own code, so a free word would be a covert channel of hundreds of bits per run: the operator
shows a reason only when it is one of :data:`TRAIN_FAILURE_REASONS`, and
:data:`UNLISTED_REASON` for anything else. The exact message stays on the pod, which stewards
read and researchers cannot.
"""

from __future__ import annotations

import math
from typing import Final

#: The prefix of the last stderr line of a train that failed with a reason.
FAILURE_LINE_PREFIX: Final = "pht-train-failure: "
#: A kubelet keeps at most this many bytes of a termination message.
TERMINATION_MESSAGE_MAX_BYTES: Final = 4096
#: What the researcher sees for a reason that is not listed (or is not a reason at all).
UNLISTED_REASON: Final = "UnlistedReason"

#: Reasons the train SDK itself ends a run with.
SDK_REASONS: Final = frozenset(
    {
        "AlgorithmError",
        "HttpError",
        "InvalidEnvironment",
        "InvalidFailureReason",
        "InvalidManifest",
        "InvalidParameters",
        "InvalidQueryResult",
        "InvalidResponse",
        "QueryNotDeclared",
        "StationUnavailable",
        "StationUnreachable",
    }
)
#: The station API's refusals a train meets while it runs; the SDK passes them on.
STATION_REFUSAL_REASONS: Final = frozenset(
    {
        "Forbidden",
        "GraphNotAllowed",
        "MalformedQuery",
        "QueryNotAllowed",
        "QueryNotApproved",
        "QueryTimeout",
        "QueryTooComplex",
        "RateLimited",
        "RowCapExceeded",
        "StoreUnavailable",
        "TooFewPatients",
        "Unauthenticated",
    }
)
#: Common reasons of train authors: the data does not allow the analysis.
AUTHOR_REASONS: Final = frozenset(
    {
        "InsufficientEvents",
        "ModelDidNotConverge",
        "MissingData",
        "NoMatchingPatients",
    }
)
#: Every reason a researcher can see from a failed train.
TRAIN_FAILURE_REASONS: Final = SDK_REASONS | STATION_REFUSAL_REASONS | AUTHOR_REASONS


def shown_reason(message: str | None) -> str | None:
    """What a researcher sees of a container's termination message.

    ``None`` when there is none (the train gave no reason); the reason when the message (its
    first :data:`TERMINATION_MESSAGE_MAX_BYTES` bytes, as a kubelet keeps them, surrounding
    white space removed) is one line that is exactly a listed reason; :data:`UNLISTED_REASON`
    for anything else: an unlisted word, more than one line, anything that is not a reason.
    """
    if not message:
        return None
    capped = message.encode("utf-8", errors="replace")[:TERMINATION_MESSAGE_MAX_BYTES]
    text = capped.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    return text if text in TRAIN_FAILURE_REASONS else UNLISTED_REASON


def shown_reason_choices() -> int:
    """Distinguishable outcomes of :func:`shown_reason`: none, unlisted, or a listed reason."""
    return len(TRAIN_FAILURE_REASONS) + 2


def shown_reason_bits() -> float:
    """The most a failed run can tell its researcher through its reason, in bits."""
    return math.log2(shown_reason_choices())
