"""What a researcher sees of a failed train's termination message (pht_contract.trainfailures).

The message is written by the train's own code, so only a listed reason passes; everything else,
however it is shaped, becomes the one fixed word, and nothing of its text comes through.
"""

from __future__ import annotations

import math
import re

import pytest

from pht_contract.base import CAMEL_REASON
from pht_contract.trainfailures import (
    AUTHOR_REASONS,
    SDK_REASONS,
    STATION_REFUSAL_REASONS,
    TERMINATION_MESSAGE_MAX_BYTES,
    TRAIN_FAILURE_REASONS,
    UNLISTED_REASON,
    shown_reason,
    shown_reason_bits,
    shown_reason_choices,
)


@pytest.mark.parametrize("reason", sorted(TRAIN_FAILURE_REASONS))
def test_a_listed_reason_is_shown_as_it_is(reason: str) -> None:
    assert shown_reason(reason) == reason
    # The SDK writes the bare word; a trailing newline or spaces are not part of it.
    assert shown_reason(f"  {reason}\n") == reason


@pytest.mark.parametrize(
    "message",
    [
        "PatientAged93LivesInRotterdam",  # a CamelCase word, but not a listed one
        "A" * 64,  # as long as a reason may be
        "InvalidParameters" + "x" * 5000,  # long: a listed prefix does not help
        "invalid parameters",  # not CamelCase
        "InvalidParameters: stage IIIb of patient 17",  # a listed word and free text
        "InvalidParameters\npatient 17 is 93",  # the first line listed, more after it
        "patient 17 is 93\nInvalidParameters",
        "Invalid\u200bParameters",  # a zero-width space inside a listed word
        "x" * (1024 * 1024),  # 1 MiB
        "\ufffd\x00\x1b[31m",  # control characters and replacement characters
    ],
)
def test_anything_else_is_the_fixed_word_and_nothing_of_its_text(message: str) -> None:
    assert shown_reason(message) == UNLISTED_REASON


def test_no_message_shows_nothing() -> None:
    for message in (None, "", "   ", "\n\n"):
        assert shown_reason(message) is None


def test_only_the_bytes_a_kubelet_keeps_are_read() -> None:
    # A listed reason after the kubelet's cap is never seen: the cap is applied first.
    padded = " " * TERMINATION_MESSAGE_MAX_BYTES + "InvalidParameters"
    assert shown_reason(padded) is None
    assert shown_reason(" " * (TERMINATION_MESSAGE_MAX_BYTES - 17) + "InvalidParameters") == (
        "InvalidParameters"
    )


def test_the_vocabulary_is_small_camel_case_and_disjoint_from_the_fixed_word() -> None:
    assert len(TRAIN_FAILURE_REASONS) <= 32
    assert TRAIN_FAILURE_REASONS == SDK_REASONS | STATION_REFUSAL_REASONS | AUTHOR_REASONS
    assert UNLISTED_REASON not in TRAIN_FAILURE_REASONS
    assert all(re.match(CAMEL_REASON, r) for r in TRAIN_FAILURE_REASONS | {UNLISTED_REASON})


def test_the_bound_counts_none_unlisted_and_every_listed_reason() -> None:
    assert shown_reason_choices() == len(TRAIN_FAILURE_REASONS) + 2
    assert shown_reason_bits() == pytest.approx(math.log2(len(TRAIN_FAILURE_REASONS) + 2))
    assert shown_reason_bits() < 5
