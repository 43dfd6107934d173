"""Model files: integrity, safe formats by content, and manual release.

A trained model can memorise its training data, so by default every model waits for a steward
(``manualReleaseForModels``). Before that: the declared size and sha256 must match the bytes,
pickle is refused whatever the declaration says (``PickleRefused``), a format the policy does
not allow is refused (``ModelFormatRefused``), and the declared format's own parser must read
the whole file with nothing left over (``UnreadableModel``, see :mod:`.formats`).
"""

import base64
import binascii
import hashlib

from pht_contract.manifests import ModelFile
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure.decisions import Finding, Outcome, Rule
from pht_station_api.disclosure.formats import SNIFFERS, is_pickle


def decode_model(model: ModelFile) -> bytes | None:
    try:
        return base64.b64decode(model.data_base64, validate=True)
    except (binascii.Error, ValueError):
        return None


def review_model(model: ModelFile, policy: DisclosurePolicy) -> list[Finding]:
    data = decode_model(model)
    if (
        data is None
        or len(data) != model.size_bytes
        or hashlib.sha256(data).hexdigest() != model.sha256
    ):
        return [Finding(Rule.MODEL_INTEGRITY, Outcome.BLOCKED, model.name)]
    if model.format == "pickle" or is_pickle(data):
        return [Finding(Rule.PICKLE_REFUSED, Outcome.BLOCKED, model.name)]
    read = SNIFFERS.get(model.format)
    if model.format not in policy.allowed_model_formats or read is None:
        return [Finding(Rule.MODEL_FORMAT_REFUSED, Outcome.BLOCKED, model.name)]
    if not read(data):
        return [Finding(Rule.UNREADABLE_MODEL, Outcome.BLOCKED, model.name)]
    if policy.manual_release_for_models:
        return [Finding(Rule.MANUAL_RELEASE_REQUIRED, Outcome.HELD, model.name)]
    return []


def review_models(models: list[ModelFile], policy: DisclosurePolicy) -> list[Finding]:
    findings: list[Finding] = []
    for model in models:
        findings += review_model(model, policy)
    return findings
