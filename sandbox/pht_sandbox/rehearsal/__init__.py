"""A rehearsal (``pht train run-local``): one train, a synthetic cohort, a real station API.

Train authors iterate long before a hospital runs their image, so this runs the train's own
entrypoint (``python -m <package>``) as a local process against the parts of a station that
decide its fate: a real ``pht api`` (gateway in the policy's query mode, disclosure gate,
provenance) on 127.0.0.1 with a generated cohort in embedded Oxigraph. The operator is not
running, so this package plays its part with the operator's own code and client:
the Train is judged by :func:`pht_contract.validation.validate_object` and
:func:`pht_contract.evaluation.evaluate`, a random token is minted and only its hash is
registered with the approved query hashes and a policy snapshot, and the process receives the
environment and files of the operator's own Job and Secret (:mod:`pht_operator.runobjects`), each
mount path mapped to a local directory. After the process exits the completion is reported and
the gate's decision is read back; a released result is downloaded the way a requester would.

This is **not** a station: the data are synthetic, nobody approves anything, and a local process
is not isolated the way a pod is (it shares this machine's network, files and user).
"""

from pht_sandbox.rehearsal.inputs import (
    LocalRunOptions,
    ManifestRefused,
    NotATrain,
    RunLocalError,
    StationUnavailable,
)
from pht_sandbox.rehearsal.outcome import LocalRunOutcome, QueryRun
from pht_sandbox.rehearsal.rehearse import run_local

__all__ = [
    "LocalRunOptions",
    "LocalRunOutcome",
    "ManifestRefused",
    "NotATrain",
    "QueryRun",
    "RunLocalError",
    "StationUnavailable",
    "run_local",
]
