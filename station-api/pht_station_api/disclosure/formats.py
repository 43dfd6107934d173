"""Content sniffing for model files: what the bytes *are*, whatever the manifest declares.

Only formats that carry data and no code are accepted. Pickle (and archives that wrap pickle,
like PyTorch's ``.pt`` zip) can execute code when loaded by whoever receives the result, so pickle
bytes are recognised by walking their opcodes (``pickletools.genops`` parses, never executes)
and refused under any declared format. Each sniffer answers *does this parse completely as the
format*, never trusting a file extension or a magic number alone.
"""

import io
import json
import math
import pickletools
import struct
import zipfile
from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.lib import format as npformat

SAFETENSORS_DTYPES: Final = frozenset(
    {
        "BOOL",
        "U8",
        "I8",
        "F8_E5M2",
        "F8_E4M3",
        "I16",
        "U16",
        "F16",
        "BF16",
        "I32",
        "U32",
        "F32",
        "F64",
        "I64",
        "U64",
    }
)
MAX_SAFETENSORS_HEADER: Final = 100 * 1024 * 1024
NPY_MAGIC: Final = b"\x93NUMPY"
ZIP_MAGIC: Final = b"PK\x03\x04"
#: Top-level fields of ONNX's ``ModelProto`` with their protobuf wire types (0 varint, 2 bytes).
ONNX_FIELDS: Final = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def is_pickle(data: bytes) -> bool:
    """True when the bytes are a complete pickle stream (any protocol) or wrap one in a zip."""
    if data.startswith(ZIP_MAGIC):
        return _zip_holds_pickle(data)
    if not data or data[-1:] != b".":
        return False
    try:
        for _opcode, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            pass
    except Exception:
        return False
    return True


def _zip_holds_pickle(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.filename.endswith((".pkl", ".pickle")):
                    return True
                if info.file_size <= 64 * 1024 * 1024 and is_pickle(archive.read(info)):
                    return True
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        return False
    return False


def is_safetensors(data: bytes) -> bool:
    if len(data) < 8:
        return False
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size < 2 or header_size > min(MAX_SAFETENSORS_HEADER, len(data) - 8):
        return False
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(header, dict):
        return False
    payload = len(data) - 8 - header_size
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
            ):
                return False
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            return False
        shape, offsets = entry["shape"], entry["data_offsets"]
        if entry["dtype"] not in SAFETENSORS_DTYPES or not isinstance(shape, list):
            return False
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            return False
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return False
        begin, end = offsets
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (begin, end)):
            return False
        if not 0 <= begin <= end <= payload:
            return False
    return True


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def is_onnx(data: bytes) -> bool:
    """Parses as an ONNX ``ModelProto``: known top-level fields to the last byte, with a graph."""
    pos, seen = 0, set()
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire = key >> 3, key & 7
            if ONNX_FIELDS.get(number) != wire:
                return False
            if wire == 0:
                _, pos = _varint(data, pos)
            else:
                length, pos = _varint(data, pos)
                if pos + length > len(data):
                    return False
                pos += length
            seen.add(number)
    except ValueError:
        return False
    return {1, 7} <= seen


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


def is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


SNIFFERS: Final[dict[str, Callable[[bytes], bool]]] = {
    "safetensors": is_safetensors,
    "onnx": is_onnx,
    "npy": is_npy,
    "json": is_json,
}
