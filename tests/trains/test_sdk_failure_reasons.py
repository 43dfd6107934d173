"""Every reason the SDK ends a run with, and every refusal of the station it passes on, is one a
researcher can see; the docs list the vocabulary and state its size."""

from __future__ import annotations

import re
from pathlib import Path

import pht_train.clients as sdk_clients
import pht_train.errors as sdk_errors
import pht_train.failures as sdk_failures
import pht_train.sessions as sdk_sessions
from pht_contract.trainfailures import (
    FAILURE_LINE_PREFIX,
    SDK_REASONS,
    STATION_REFUSAL_REASONS,
    TERMINATION_MESSAGE_MAX_BYTES,
    TRAIN_FAILURE_REASONS,
    UNLISTED_REASON,
)
from pht_station_api import errors as station_errors

REPO = Path(__file__).resolve().parents[2]


def _subclasses(base: type) -> list[type]:
    found = []
    for cls in base.__subclasses__():
        found += [cls, *_subclasses(cls)]
    return found


def _quoted_reasons(module: object) -> set[str]:
    """The CamelCase words a module's source quotes (the reasons it builds errors with)."""
    source = Path(str(getattr(module, "__file__", ""))).read_text()
    return set(re.findall(r'"([A-Z][a-z]+(?:[A-Z][a-z]+)+)"', source))


def test_every_reason_of_the_sdk_is_listed() -> None:
    raised = {cls.reason for cls in _subclasses(sdk_errors.TrainError) if "reason" in vars(cls)}
    assert raised, "the SDK's error classes name their reasons"
    assert raised <= SDK_REASONS
    assert sdk_failures.INVALID_REASON in SDK_REASONS
    assert "AlgorithmError" in _quoted_reasons(sdk_sessions)
    # The client's own reasons when the station's answer says none (bar plain HTTP statuses).
    own = _quoted_reasons(sdk_clients) - set(sdk_clients._STATUS_REASONS.values())
    assert own, "the client names its own reasons"
    assert own <= SDK_REASONS, own


def test_every_listed_refusal_is_one_the_station_answers_with() -> None:
    answered = {cls.reason for cls in _subclasses(station_errors.StationApiError)}
    assert answered >= STATION_REFUSAL_REASONS


def test_every_listed_reason_passes_the_sdks_own_check() -> None:
    for reason in TRAIN_FAILURE_REASONS | {UNLISTED_REASON}:
        assert sdk_failures.is_reason(reason), reason


def test_the_sdk_writes_what_the_station_reads() -> None:
    assert sdk_failures.FAILURE_PREFIX == FAILURE_LINE_PREFIX
    assert str(sdk_failures.TERMINATION_LOG) == "/dev/termination-log"
    assert TERMINATION_MESSAGE_MAX_BYTES == 4096


def test_the_docs_list_the_vocabulary_and_its_size() -> None:
    sdk_doc = (REPO / "docs" / "train-sdk.md").read_text()
    missing = sorted(r for r in TRAIN_FAILURE_REASONS | {UNLISTED_REASON} if r not in sdk_doc)
    assert not missing, f"docs/train-sdk.md should name {missing}"
    security = (REPO / "docs" / "security.md").read_text()
    assert f"one of the {len(TRAIN_FAILURE_REASONS)} reasons" in security
    assert f"log2({len(TRAIN_FAILURE_REASONS)} + 2)" in security
