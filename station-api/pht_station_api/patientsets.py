"""Keyed fingerprints of the patients a train's answers bound, for the differencing ledger.

The ledger must compare *which* patients two releases rest on, yet the station must not keep
a second list of patient IRIs next to the results. Each IRI is replaced by an HMAC-SHA256 under
a random key that never leaves the station's state directory: two fingerprints are equal
exactly when the patients are, and without the key a fingerprint cannot be tied back to an IRI
by hashing candidate IRIs (patient IRIs are guessable, so a plain hash would not do). The
fingerprints appear only in the station's own state files; never in logs, metrics, provenance,
findings or anything a researcher receives.
"""

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Final

KEY_BYTES: Final = 32
#: 128 bits of the HMAC: collisions among a hospital's patients are out of reach, and the
#: registry stays half the size it would be with the full digest.
FINGERPRINT_HEX: Final = 32


def load_or_create_key(path: Path | None) -> bytes:
    """The station's fingerprint key: read from ``path``, or created there (mode 0600).

    With no path (tests, a state-less API) the key lives in memory only, which is safe: the
    fingerprints it made are not kept either.
    """
    if path is None:
        return secrets.token_bytes(KEY_BYTES)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) >= KEY_BYTES:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return key


class PatientFingerprints:
    """Turns patient IRIs (as the query worker found them) into keyed fingerprints."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, iris: Iterable[bytes]) -> frozenset[str]:
        return frozenset(
            hmac.new(self._key, iri, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX] for iri in iris
        )
