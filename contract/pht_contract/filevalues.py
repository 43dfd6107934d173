"""Settings that may be given as a value or as a file (the ``*_FILE`` convention).

A credential is usually mounted from a Kubernetes Secret as a file; ``NAME_FILE`` names that
file and ``NAME`` gives the value itself (tests, a station in a box). When both are set the
file wins. The file is read at each call, so a rotated Secret is picked up without a restart.
"""

from __future__ import annotations

from pathlib import Path


def value_or_file(value: str | None, file: Path | None) -> str | None:
    """The file's content (surrounding whitespace removed) if a file is given, else the
    value; ``None`` when neither holds anything."""
    if file is not None:
        return file.read_text(encoding="utf-8").strip() or None
    return value or None
