"""Ending a run with a reason: a CamelCase word on stderr and a non-zero exit, never data.

Algorithm output is not shown to researchers, but the reason is: the operator records it in
the Train's conditions. So the reason must be a short CamelCase word (like every Train reason)
and nothing else — no exception text, which could quote a patient's value. Where Kubernetes
provides a termination-message file, the reason is written there too, so the operator can
read it from the Pod status without reading logs.
"""

import contextlib
import re
import sys
from pathlib import Path
from typing import Final, NoReturn, TextIO

from pht_train.constants import CAMEL_REASON, MAX_REASON_CHARS

#: A failed run's last stderr line is ``FAILURE_PREFIX + reason``.
FAILURE_PREFIX: Final = "pht-train-failure: "
#: The exit status of a run that failed with a reason (1 is left to Python's own crashes).
FAILURE_EXIT_CODE: Final = 3
#: Kubernetes' default ``terminationMessagePath``.
TERMINATION_LOG: Final = Path("/dev/termination-log")
#: Used when a train passes something that is not a CamelCase reason.
INVALID_REASON: Final = "InvalidFailureReason"

_REASON = re.compile(CAMEL_REASON)


def is_reason(text: str) -> bool:
    """Whether ``text`` is a CamelCase reason the operator can record as it is."""
    return len(text) <= MAX_REASON_CHARS and bool(_REASON.match(text))


def fail(
    reason: str, stderr: TextIO | None = None, termination_log: Path = TERMINATION_LOG
) -> NoReturn:
    """Stop the run now with ``reason`` (e.g. ``"TooFewPatients"``); exits non-zero."""
    if not isinstance(reason, str) or not is_reason(reason):
        reason = INVALID_REASON
    stream = sys.stderr if stderr is None else stderr
    print(FAILURE_PREFIX + reason, file=stream, flush=True)
    # Only an existing file: outside Kubernetes nothing must be created in /dev.
    if termination_log.is_file():
        with contextlib.suppress(OSError):
            termination_log.write_text(reason, encoding="utf-8")
    raise SystemExit(FAILURE_EXIT_CODE)
