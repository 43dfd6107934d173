"""An independent reader of the safetensors format (for tests): header, offsets, arrays."""

import json
import struct
from typing import Any

import numpy as np

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "|u1"}


def read(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    (length,) = struct.unpack("<Q", data[:8])
    header: dict[str, Any] = json.loads(data[8 : 8 + length])
    buffer = data[8 + length :]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    covered = 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        assert begin == covered, "tensors must be contiguous, without holes"
        array = np.frombuffer(buffer[begin:end], dtype=_DTYPES[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"])
        covered = end
    assert covered == len(buffer), "no trailing bytes"
    return tensors, metadata
