"""Writing the safetensors format by hand, for images without the ``safetensors`` package.

The format (huggingface/safetensors, "Format" in its README) is: an unsigned 64-bit
little-endian header length N; N bytes of UTF-8 JSON mapping each tensor name to its
``dtype``, ``shape`` and ``data_offsets`` [begin, end) into the byte buffer, plus an optional
``__metadata__`` object of string → string; then the buffer, tensors stored little-endian,
C order, back to back. The header is padded with spaces to a multiple of 8 bytes so the
buffer is aligned. No code is ever executed on load, which is why a station accepts it.
"""

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

#: Format dtype names for the NumPy dtype strings this writer accepts.
DTYPES = {"<f4": "F32", "<f8": "F64", "<f2": "F16", "<i8": "I64", "<i4": "I32", "|u1": "U8"}
_ITEM_SIZES = {"F32": 4, "F64": 8, "F16": 2, "I64": 8, "I32": 4, "U8": 1}


@dataclass(frozen=True)
class RawTensor:
    """A tensor as the file stores it: format dtype, shape, little-endian C-order bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self) -> None:
        if self.dtype not in _ITEM_SIZES:
            raise ValueError(f"unsupported dtype {self.dtype}")
        elements = 1
        for size in self.shape:
            elements *= size
        if elements * _ITEM_SIZES[self.dtype] != len(self.data):
            raise ValueError("the data does not match the shape and dtype")


def encode(tensors: Mapping[str, RawTensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (in name order)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name]
        header[name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(tensor.data)],
        }
        offset += len(tensor.data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(tensors[n].data for n in sorted(tensors))
