"""Deterministic names and labels of what a Train owns in the run namespace.

Names derive from the Train's uid, so a restarted operator finds (and never duplicates) what an
earlier incarnation created; a create that answers 409 means "already done". Labels link each
object back to its Train, because ownerReferences cannot cross namespaces.
"""

import re
from dataclasses import dataclass
from typing import Final

from pht_contract import constants

#: Room for the ``-xxxxx`` suffix the Job controller appends to pod names.
_STEM_LENGTH: Final = 50
RUN_COMPONENT: Final = "train-run"


def _dns_safe(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def label_value(text: str) -> str:
    """A valid label value (≤ 63 characters, alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


@dataclass(frozen=True)
class RunNames:
    job: str
    secret: str
    network_policy: str


def run_names(uid: str, train_name: str) -> RunNames:
    stem = f"pht-{_dns_safe(uid)[:8]}-{_dns_safe(train_name)}"[:_STEM_LENGTH].rstrip("-")
    return RunNames(job=stem, secret=f"{stem}-run", network_policy=f"{stem}-egress")


def run_labels(uid: str, namespace: str, name: str) -> dict[str, str]:
    return {
        constants.LABEL_TRAIN_UID: label_value(uid),
        constants.LABEL_TRAIN_NAMESPACE: label_value(namespace),
        constants.LABEL_TRAIN_NAME: label_value(name),
        constants.LABEL_MANAGED_BY: constants.MANAGED_BY,
        constants.LABEL_COMPONENT: RUN_COMPONENT,
    }
