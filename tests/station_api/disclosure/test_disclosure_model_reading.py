"""Reading model files within bounds: what the search for pickle finds, and what a format holds."""

import io
import json
import pickle
import struct
import zipfile

from pht_station_api.disclosure.formats import (
    MAX_SAFETENSORS_METADATA,
    CodeCheck,
    ReadBudget,
    Reading,
    check_code,
    read_model,
)


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _safetensors(metadata: dict[str, str]) -> bytes:
    header = json.dumps(
        {"__metadata__": metadata, "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    ).encode()
    return struct.pack("<Q", len(header)) + header + b"\x01"


def test_a_pickle_under_any_member_name_is_found() -> None:
    assert check_code(_zip({"weights.bin": pickle.dumps({"w": [1.0]})})) is CodeCheck.PICKLE
    assert check_code(_zip({"data.pkl": b"not even a pickle"})) is CodeCheck.PICKLE


def test_a_zip_of_plain_members_is_no_code_and_no_model() -> None:
    zipped = _zip({"a.txt": b"hello", "b.bin": b"\x00" * 1024})
    assert check_code(zipped) is CodeCheck.NONE
    assert all(read_model(fmt, zipped) is Reading.UNREADABLE for fmt in ("json", "npy", "onnx"))


def test_a_spent_budget_refuses_without_reading() -> None:
    budget = ReadBudget()
    budget.bytes = -1
    assert check_code(_zip({"a": b"\x00"}), budget) is CodeCheck.TOO_LARGE
    budget = ReadBudget()
    budget.opcodes = 1
    assert check_code(b"NN.", budget) is CodeCheck.TOO_LARGE


def test_a_member_whose_header_understates_its_size_is_still_bounded() -> None:
    zipped = bytearray(_zip({"a": b"\x00" * (65 * 1024 * 1024)}))
    central = zipped.rindex(b"PK\x01\x02")
    struct.pack_into("<L", zipped, central + 24, 16)  # the central directory's file size
    local = 0
    struct.pack_into("<L", zipped, local + 22, 16)  # and the local header's
    assert check_code(bytes(zipped)) in (CodeCheck.NONE, CodeCheck.TOO_LARGE)


def test_safetensors_metadata_up_to_the_bound_is_a_model() -> None:
    small = _safetensors({"format": "pt"})
    assert read_model("safetensors", small) is Reading.MODEL
    edge = _safetensors({"k": "x" * (MAX_SAFETENSORS_METADATA - 1)})
    assert read_model("safetensors", edge) is Reading.MODEL
    over = _safetensors({"k": "x" * MAX_SAFETENSORS_METADATA})
    assert read_model("safetensors", over) is Reading.FREE_CONTENT


def test_json_models_are_read_once_and_judged() -> None:
    assert read_model("json", b"[[1, 2], [3, 4.5]]") is Reading.MODEL
    assert read_model("json", b'{"w": [1], "b": 0.5}') is Reading.MODEL
    assert read_model("json", b'{"w": "x"}') is Reading.FREE_CONTENT
    assert read_model("json", b"[NaN]") is Reading.UNREADABLE
    assert read_model("json", b"[1,") is Reading.UNREADABLE
