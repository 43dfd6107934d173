"""The chain head published *outside* the provenance store.

Whoever can rewrite the store can recompute every hash in it; they cannot also rewrite a file on
another volume (or, in a cluster, a ConfigMap they have no rights on). The file is append-only
JSON Lines, one ``{"seq", "hash", "at"}`` per record, so its last line is the head and the
whole file checks every record.

Each line is handed to the operating system before the record is acknowledged (it survives a
crash of the API process) but not fsynced: the store's own transactions are not synced to disk
either, and an fsync per record would cost every audited query several milliseconds. After a
power loss both may miss their last records; ``verify`` then reports the difference.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PublishedHead:
    seq: int
    hash: str


class HeadFileError(ValueError):
    """The head file exists but cannot be read as published heads."""


def append_head(path: Path, head: PublishedHead, at: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"seq": head.seq, "hash": head.hash, "at": at}, sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)


_HASH = re.compile(r"[0-9a-f]{64}")


def read_heads(path: Path) -> list[PublishedHead]:
    """Every published head, in file order; an absent file publishes nothing.

    Raises :class:`HeadFileError` unless every line is a head (``seq`` counting 0, 1, 2 … in
    order, ``hash`` 64 lowercase hex digits): the file is only ever appended to by the API,
    so anything else means it was damaged or edited.
    """
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeadFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    heads: list[PublishedHead] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            head = PublishedHead(seq=int(value["seq"]), hash=str(value["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise HeadFileError(f"{path}:{number}: not a published head ({exc})") from exc
        if not _HASH.fullmatch(head.hash):
            raise HeadFileError(f"{path}:{number}: the hash is not 64 hexadecimal digits")
        if head.seq != len(heads):
            raise HeadFileError(f"{path}:{number}: head {head.seq} where {len(heads)} belongs")
        heads.append(head)
    return heads
