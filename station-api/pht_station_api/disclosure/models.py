"""Model files: integrity, safe formats by content, and manual release.

A trained model can memorise its training data, so by default every model waits for a steward
(``manualReleaseForModels``). Before that: the declared size and sha256 must match the bytes,
pickle is refused whatever the declaration says (``PickleRefused``), a format the policy does
not allow is refused (``ModelFormatRefused``), and the declared format's own parser must read
the whole file with nothing left over (``UnreadableModel``, see :mod:`.formats`).

The search for pickle does bounded work whatever the file claims: a zip with too many entries,
too many decompressed bytes, or an opcode stream too long to walk is blocked
(``ModelTooLargeToRead``), and so is a zip whose entries repeat a name or share bytes
(``MalformedModelArchive``). A readable model that carries free content beside its numbers (a
JSON model with strings, a long safetensors ``__metadata__``) is held for a steward
(``ModelFreeContent``) even where models are otherwise released without one.
"""

import base64
import binascii
import hashlib
from typing import Final

from pht_contract.manifests import ModelFile
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure.decisions import Finding, Outcome, Rule
from pht_station_api.disclosure.formats import (
    SNIFFERS,
    CodeCheck,
    ReadBudget,
    Reading,
    check_code,
    read_model,
)

#: What each kind of code found in a model file blocks it as.
CODE_RULES: Final = {
    CodeCheck.PICKLE: Rule.PICKLE_REFUSED,
    CodeCheck.TOO_LARGE: Rule.MODEL_TOO_LARGE_TO_READ,
    CodeCheck.MALFORMED_ARCHIVE: Rule.MALFORMED_MODEL_ARCHIVE,
}


def decode_model(model: ModelFile) -> bytes | None:
    try:
        return base64.b64decode(model.data_base64, validate=True)
    except (binascii.Error, ValueError):
        return None


def review_model(
    model: ModelFile, policy: DisclosurePolicy, budget: ReadBudget | None = None
) -> list[Finding]:
    data = decode_model(model)
    if (
        data is None
        or len(data) != model.size_bytes
        or hashlib.sha256(data).hexdigest() != model.sha256
    ):
        return [Finding(Rule.MODEL_INTEGRITY, Outcome.BLOCKED, model.name)]
    if model.format == "pickle":
        return [Finding(Rule.PICKLE_REFUSED, Outcome.BLOCKED, model.name)]
    code = check_code(data, budget)
    if code is not CodeCheck.NONE:
        return [Finding(CODE_RULES[code], Outcome.BLOCKED, model.name)]
    if model.format not in policy.allowed_model_formats or model.format not in SNIFFERS:
        return [Finding(Rule.MODEL_FORMAT_REFUSED, Outcome.BLOCKED, model.name)]
    reading = read_model(model.format, data)
    if reading is Reading.UNREADABLE:
        return [Finding(Rule.UNREADABLE_MODEL, Outcome.BLOCKED, model.name)]
    if reading is Reading.FREE_CONTENT:
        return [Finding(Rule.MODEL_FREE_CONTENT, Outcome.HELD, model.name)]
    if policy.manual_release_for_models:
        return [Finding(Rule.MANUAL_RELEASE_REQUIRED, Outcome.HELD, model.name)]
    return []


def review_models(models: list[ModelFile], policy: DisclosurePolicy) -> list[Finding]:
    findings: list[Finding] = []
    # One budget for the whole result: sixteen files cannot buy sixteen times the work.
    budget = ReadBudget()
    for model in models:
        findings += review_model(model, policy, budget)
    return findings
