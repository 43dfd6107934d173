"""Small, crash-safe file helpers for the result archive.

Every write goes to a temporary file in the same directory and is renamed into place, so a
crash leaves either the old or the new version, never half a decision.
"""

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

_SAFE_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, sort_keys=True, indent=1).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def train_folder(root: Path, uid: str) -> Path:
    """Kubernetes uids are UUIDs; anything else is hashed so no uid can escape the root."""
    name = uid if _SAFE_UID.fullmatch(uid) else "h-" + hashlib.sha256(uid.encode()).hexdigest()
    return root / name
