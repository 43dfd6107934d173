"""Model files by full parse: what the bytes *are*, whatever the manifest declares.

Only formats that carry data and no code are accepted. Pickle (and archives that wrap pickle,
like PyTorch's ``.pt`` zip) can execute code when loaded by whoever receives the result, so pickle
bytes are recognised by walking their opcodes (``pickletools.genops`` parses, never executes)
and refused under any declared format. Each reader answers *does the format's own parser read
the whole file, with nothing left over*, never trusting a file extension or a magic number: a
valid file with a pickle or a zip appended is not a valid file.
"""

import io
import json
import math
import pickletools
import struct
import zipfile
from collections.abc import Callable
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


def is_pickle(data: bytes) -> bool:
    """True when the bytes begin with a complete pickle stream (any protocol) or wrap one in a zip.

    ``pickle.loads`` stops at the STOP opcode and ignores whatever follows, so what matters is
    whether a valid opcode stream reaches STOP from the first byte; ``genops`` stops there too.
    """
    if data.startswith(ZIP_MAGIC):
        return _zip_holds_pickle(data)
    if not data:
        return False
    try:
        for _opcode, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            pass
    except Exception:
        # Any failure to walk the opcodes to STOP means pickle.loads would not load it either.
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
