"""Model files by full parse: what the bytes *are*, whatever the manifest declares.

Only formats that carry data and no code are accepted. Pickle (and archives that wrap pickle,
like PyTorch's ``.pt`` zip) can execute code when loaded by whoever receives the result, so pickle
bytes are recognised by walking their opcodes (``pickletools.genops`` parses, never executes)
and refused under any declared format. Each reader answers *does the format's own parser read
the whole file, with nothing left over*, never trusting a file extension or a magic number: a
valid file with a pickle or a zip appended is not a valid file.

All of this is bounded work whatever a file claims (:class:`ReadBudget`): zip entries are counted
before the archive is parsed, members are decompressed in counted chunks, and the opcode walk
stops at a fixed length. A readable file is then checked for content beside its numbers
(:func:`read_model`): a JSON model must be numbers only, a safetensors ``__metadata__`` short.
"""

import io
import json
import math
import pickletools
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final

import numpy as np
import onnx
from numpy.lib import format as npformat

#: safetensors dtypes and their sizes in bytes.
SAFETENSORS_DTYPES: Final = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "F64": 8,
    "I64": 8,
    "U64": 8,
}
MAX_SAFETENSORS_HEADER: Final = 100 * 1024 * 1024
NPY_MAGIC: Final = b"\x93NUMPY"
ZIP_MAGIC: Final = b"PK\x03\x04"


#: Most opcodes walked, over all model files of a result (a zip's members included). A stream
#: this long without its STOP opcode is refused rather than walked further: walking is pure
#: Python, and it runs while the result archive records the completion.
MAX_PICKLE_OPCODES: Final = 100_000
#: Most entries a zip may list, and most bytes its entries may decompress to, all together.
MAX_ZIP_ENTRIES: Final = 1_000
MAX_ZIP_BYTES: Final = 64 * 1024 * 1024
#: Most bytes of a safetensors ``__metadata__`` (keys and values, UTF-8) released without a look.
MAX_SAFETENSORS_METADATA: Final = 256
#: A JSON model is numbers only: keys are short identifiers, and few distinct ones.
MAX_JSON_KEYS: Final = 256
MAX_JSON_CONTAINERS: Final = 100_000
JSON_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
CENTRAL_DIRECTORY: Final = b"PK\x01\x02"
LOCAL_HEADER: Final = struct.Struct("<4s5H3L2H")


class CodeCheck(StrEnum):
    """What the search for pickle found; anything but ``NONE`` blocks the model."""

    NONE = "none"
    PICKLE = "pickle"
    #: Reading on would exceed a bound (entries, decompressed bytes, opcodes).
    TOO_LARGE = "too-large"
    #: A zip whose entries repeat a name or share bytes (one member listed many times).
    MALFORMED_ARCHIVE = "malformed-archive"


class ReadBudget:
    """What is left to decompress and walk: one budget for all model files of a result."""

    def __init__(self) -> None:
        self.opcodes = MAX_PICKLE_OPCODES
        self.bytes = MAX_ZIP_BYTES


def check_code(data: bytes, budget: ReadBudget | None = None) -> CodeCheck:
    """Whether the bytes are, or wrap, a pickle, judged within fixed bounds of work.

    ``pickle.loads`` stops at the STOP opcode and ignores whatever follows, so what matters is
    whether a valid opcode stream reaches STOP from the first byte; ``genops`` stops there too.
    A zip is read only within bounds (entries, decompressed bytes) whatever its headers claim.
    """
    budget = ReadBudget() if budget is None else budget
    if data.startswith(ZIP_MAGIC):
        return _check_zip(data, budget)
    return _walk_opcodes(data, budget)


def is_pickle(data: bytes) -> bool:
    """True when the bytes begin with a complete pickle stream or wrap one in a zip."""
    return check_code(data) is CodeCheck.PICKLE


def _walk_opcodes(data: bytes, budget: ReadBudget) -> CodeCheck:
    if not data:
        return CodeCheck.NONE
    try:
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if opcode.name == "STOP":
                return CodeCheck.PICKLE
            budget.opcodes -= 1
            if budget.opcodes <= 0:
                return CodeCheck.TOO_LARGE
    except Exception:
        # Any failure to walk the opcodes to STOP means pickle.loads would not load it either.
        return CodeCheck.NONE
    return CodeCheck.PICKLE


def _entries_overlap(data: bytes, infos: list[zipfile.ZipInfo]) -> bool:
    """True when two entries' local headers and compressed bytes share any byte of the file."""
    end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        start = info.header_offset
        if start < end or start + LOCAL_HEADER.size > len(data):
            return True
        header = LOCAL_HEADER.unpack_from(data, start)
        if header[0] != ZIP_MAGIC:
            return True
        end = start + LOCAL_HEADER.size + header[9] + header[10] + info.compress_size
        if end > len(data):
            return True
    return False


def _read_bounded(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ReadBudget
) -> bytes | None:
    """The member's bytes, or ``None`` once the archive's decompressed total passes the bound.

    Reads in chunks and counts what came out; the sizes the headers declare are not trusted.
    """
    chunks: list[bytes] = []
    if budget.bytes < 0:
        return None
    with archive.open(info) as member:
        while True:
            chunk = member.read(min(1024 * 1024, budget.bytes + 1))
            if not chunk:
                return b"".join(chunks)
            budget.bytes -= len(chunk)
            if budget.bytes < 0:
                return None
            chunks.append(chunk)


def _check_zip(data: bytes, budget: ReadBudget) -> CodeCheck:
    # Every central directory entry starts with its signature, so counting signatures bounds the
    # entries before the zip module parses any (a false hit only makes the bound stricter).
    if data.count(CENTRAL_DIRECTORY) > MAX_ZIP_ENTRIES:
        return CodeCheck.TOO_LARGE
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                return CodeCheck.TOO_LARGE
            if len({info.filename for info in infos}) != len(infos):
                return CodeCheck.MALFORMED_ARCHIVE
            if _entries_overlap(data, infos):
                return CodeCheck.MALFORMED_ARCHIVE
            if any(info.filename.endswith((".pkl", ".pickle")) for info in infos):
                return CodeCheck.PICKLE
            for info in infos:
                member = _read_bounded(archive, info, budget)
                if member is None:
                    return CodeCheck.TOO_LARGE
                found = _walk_opcodes(member, budget)
                if found is not CodeCheck.NONE:
                    return found
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, RuntimeError, NotImplementedError):
        # Unreadable as a zip: no format's parser reads it either, so it is UnreadableModel.
        return CodeCheck.NONE
    return CodeCheck.NONE


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _tensor_span(entry: object) -> tuple[int, int] | None:
    """A tensor's ``(begin, end)`` when its entry is well formed and its size fits its shape."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return None
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES or not isinstance(shape, list):
        return None
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return None
    if not (isinstance(offsets, list) and len(offsets) == 2):
        return None
    begin, end = offsets
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (begin, end)):
        return None
    if not 0 <= begin <= end or end - begin != math.prod(shape) * SAFETENSORS_DTYPES[dtype]:
        return None
    return begin, end


def is_safetensors(data: bytes) -> bool:
    """The safetensors layout read in full: the tensors tile the payload exactly.

    As the reference parser does: the header is a JSON object of tensors (plus a string-valued
    ``__metadata__``), each tensor's byte span matches its dtype and shape, and the spans, in
    order, start at 0, touch without gap or overlap and end at the file's last byte. Bytes
    appended after the tensors (a zip, a pickle) or hidden between them make the file unreadable.
    """
    if len(data) < 8:
        return False
    header_size = int(struct.unpack("<Q", data[:8])[0])
    if header_size < 2 or header_size > min(MAX_SAFETENSORS_HEADER, len(data) - 8):
        return False
    if data[8:9] != b"{":
        return False
    try:
        header = json.loads(
            data[8 : 8 + header_size].decode("utf-8"), object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(header, dict):
        return False
    spans: list[tuple[int, int]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
            ):
                return False
            continue
        span = _tensor_span(entry)
        if span is None:
            return False
        spans.append(span)
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            return False
        position = end
    return position == len(data) - 8 - header_size


def is_onnx(data: bytes) -> bool:
    """An ONNX ``ModelProto`` as the ``onnx`` package reads it: the whole buffer, then checked.

    Protobuf parses to the last byte (bytes after the model that are not its fields fail to
    parse); fields this ONNX version does not know are refused rather than carried along
    unread; and the ONNX checker must accept the model (a graph, operator sets, types).
    """
    try:
        model = onnx.ModelProto.FromString(data)
        known = onnx.ModelProto()
        known.CopyFrom(model)
        known.DiscardUnknownFields()
        if known.ByteSize() != model.ByteSize() or not model.HasField("graph"):
            return False
        onnx.checker.check_model(model)
    except Exception:
        # Any parser or checker failure means the file is not a readable ONNX model.
        return False
    return True


def is_npy(data: bytes) -> bool:
    """A ``.npy`` array that loads with ``allow_pickle=False``: object dtypes are refused."""
    if not data.startswith(NPY_MAGIC):
        return False
    handle = io.BytesIO(data)
    try:
        # The header alone first: a shape promising more bytes than were sent is refused
        # before numpy allocates anything for it.
        version = npformat.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npformat.read_array_header_1_0(handle)
        else:
            shape, _, dtype = npformat.read_array_header_2_0(handle)
        if dtype.hasobject or handle.tell() + math.prod(shape) * dtype.itemsize != len(data):
            return False
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, MemoryError):
        return False
    return isinstance(array, np.ndarray) and not array.dtype.hasobject


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


class _Unreadable:
    """Stands for JSON that does not parse (``None`` is the JSON value ``null``)."""


UNREADABLE_JSON: Final = _Unreadable()


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return UNREADABLE_JSON


def is_json(data: bytes) -> bool:
    return _load_json(data) is not UNREADABLE_JSON


def _safetensors_metadata(data: bytes) -> dict[str, Any]:
    header_size = int(struct.unpack("<Q", data[:8])[0])
    header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return metadata if isinstance(metadata, dict) else {}


def safetensors_metadata_small(data: bytes) -> bool:
    """A readable safetensors file whose ``__metadata__`` holds a few hundred bytes at most.

    The reader already requires string values; free text beyond a label or two (``format: pt``)
    is content riding along with the tensors, not part of the model.
    """
    metadata = _safetensors_metadata(data)
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in metadata.items())
    return size <= MAX_SAFETENSORS_METADATA


#: The largest magnitude a JSON model's number may have: every integer up to it is a double.
MAX_JSON_MAGNITUDE: Final = 2**53
_NUMBER_TYPES: Final = frozenset({int, float})
_CONTAINER_TYPES: Final = frozenset({list, dict})


def _numbers_in_range(values: list[Any]) -> bool:
    """``values`` are ints and floats (not booleans) of magnitude up to 2**53, checked in C."""
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return False
    return not values or (min(values) >= -MAX_JSON_MAGNITUDE and max(values) <= MAX_JSON_MAGNITUDE)


def numbers_only(document: Any) -> bool:
    """A readable JSON model of numbers only: nested arrays and objects of finite numbers.

    Object keys must be short identifiers (a layer's name), at most ``MAX_JSON_KEYS`` distinct
    ones in the file; an array holds numbers or arrays and objects, not both; numbers are ints
    and floats of magnitude up to 2**53 (so no infinity). Strings, booleans and nulls are
    content, not weights. At most ``MAX_JSON_CONTAINERS`` arrays and objects are visited, and
    each array's numbers are checked by C loops, so the check costs little more than parsing.
    """
    keys: set[str] = set()
    stack: list[Any] = [document]
    visited = 0
    while stack:
        value = stack.pop()
        visited += 1
        if visited > MAX_JSON_CONTAINERS:
            return False
        if isinstance(value, dict):
            keys.update(value)
            if len(keys) > MAX_JSON_KEYS or not all(JSON_KEY.fullmatch(k) for k in value):
                return False
            items = list(value.values())
            numbers = [v for v in items if type(v) in _NUMBER_TYPES]
            if not _numbers_in_range(numbers):
                return False
            nested = [v for v in items if type(v) not in _NUMBER_TYPES]
            if not set(map(type, nested)) <= _CONTAINER_TYPES:
                return False
            stack.extend(nested)
        elif isinstance(value, list):
            kinds = set(map(type, value))
            if kinds <= _CONTAINER_TYPES:
                stack.extend(value)
            elif not _numbers_in_range(value):
                return False
        elif not _numbers_in_range([value]):
            return False
    return True


#: Per format, whether a readable file carries only what a model needs (no free content).
SNIFFERS: Final[dict[str, Callable[[bytes], bool]]] = {
    "safetensors": is_safetensors,
    "onnx": is_onnx,
    "npy": is_npy,
    "json": is_json,
}


class Reading(StrEnum):
    """What a declared format's parser made of a file."""

    UNREADABLE = "unreadable"
    #: Readable, and carrying content beside what a model needs.
    FREE_CONTENT = "free-content"
    MODEL = "model"


def read_model(fmt: str, data: bytes) -> Reading:
    """The file read whole by its declared format's parser (once), then checked for content."""
    if fmt == "json":
        document = _load_json(data)
        if document is UNREADABLE_JSON:
            return Reading.UNREADABLE
        return Reading.MODEL if numbers_only(document) else Reading.FREE_CONTENT
    read = SNIFFERS.get(fmt)
    if read is None or not read(data):
        return Reading.UNREADABLE
    if fmt == "safetensors" and not safetensors_metadata_small(data):
        return Reading.FREE_CONTENT
    return Reading.MODEL
