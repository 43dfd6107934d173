"""The algorithm author against the model-format checks: code disguised as a data format.

A model file is accepted only when its declared format's own parser reads the whole file with
nothing left over; a pickle (which runs code when the recipient loads it) is refused whatever
it is declared as and whatever follows its STOP opcode.
"""

import base64
import hashlib
import io
import json
import pickle
import struct
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from security_gate_kit import COHORT, REVIEW_MOMENT, REVIEWED_IMAGE, example_policy

from pht_contract.manifests import ModelFile, ResultManifest
from pht_station_api.disclosure import Outcome, Rule, evaluate
from pht_station_api.disclosure.formats import is_onnx, is_pickle, is_safetensors

POLICY = example_policy(reviewed=True)


class Payload:
    """Runs code when unpickled: what a recipient's ``pickle.load`` would execute."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("the recipient just ran the train author's code",))


def _model(data: bytes, fmt: str) -> ModelFile:
    return ModelFile.model_validate(
        {
            "name": f"model.{fmt}",
            "format": fmt,
            "sha256": hashlib.sha256(data).hexdigest(),
            "sizeBytes": len(data),
            "dataBase64": base64.b64encode(data).decode(),
        }
    )


def _decide(data: bytes, fmt: str) -> tuple[Outcome, object]:
    manifest = ResultManifest(models=[_model(data, fmt)])
    decision = evaluate(
        manifest, POLICY, audited_cohort=COHORT, image=REVIEWED_IMAGE, at=REVIEW_MOMENT
    )
    return decision.outcome, decision.rule


def _safetensors(extra_gap: int = 0) -> bytes:
    payload = np.arange(6, dtype="<f4").tobytes()
    header = json.dumps(
        {
            "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [24 + extra_gap, 32 + extra_gap]},
        }
    ).encode()
    body = payload + b"\x00" * extra_gap + np.ones(2, dtype="<f4").tobytes()
    return struct.pack("<Q", len(header)) + header + body


def _onnx() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    w = numpy_helper.from_array(np.eye(2, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Payload()))
    return out.getvalue()


PICKLE = pickle.dumps(Payload(), protocol=4)


@pytest.mark.parametrize("fmt", ["onnx", "safetensors", "npy", "json"])
@pytest.mark.parametrize("trailer", [b"", b"\x00", b"not the end marker", b"\x08\x01"])
def test_a_pickle_with_bytes_after_its_stop_opcode_is_refused(fmt: str, trailer: bytes) -> None:
    data = PICKLE + trailer
    assert is_pickle(data)
    assert _decide(data, fmt) == (Outcome.BLOCKED, Rule.PICKLE_REFUSED)


def test_safetensors_with_a_zip_appended_is_unreadable() -> None:
    assert is_safetensors(_safetensors())
    assert _decide(_safetensors() + _zip(), "safetensors") == (
        Outcome.BLOCKED,
        Rule.UNREADABLE_MODEL,
    )
    assert _decide(_safetensors() + PICKLE, "safetensors") == (
        Outcome.BLOCKED,
        Rule.UNREADABLE_MODEL,
    )


def test_safetensors_with_bytes_hidden_between_tensors_is_unreadable() -> None:
    assert not is_safetensors(_safetensors(extra_gap=64))
    assert _decide(_safetensors(extra_gap=64), "safetensors")[1] == Rule.UNREADABLE_MODEL


def test_safetensors_whose_offsets_disagree_with_the_shape_is_unreadable() -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 24]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\x00" * 24
    assert _decide(data, "safetensors") == (Outcome.BLOCKED, Rule.UNREADABLE_MODEL)


def test_onnx_is_read_whole_by_the_onnx_parser() -> None:
    model = _onnx()
    assert is_onnx(model)
    # a readable model is held for a steward (models can memorise their training data)
    assert _decide(model, "onnx") == (Outcome.HELD, Rule.MANUAL_RELEASE_REQUIRED)
    for trailer in (PICKLE, _zip(), b"\x00"):
        assert _decide(model + trailer, "onnx") == (Outcome.BLOCKED, Rule.UNREADABLE_MODEL)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def test_onnx_with_fields_the_parser_does_not_know_is_unreadable() -> None:
    # field 99, length-delimited: valid protobuf that an ONNX reader would silently skip
    hidden = bytes([0x9A, 0x06]) + _varint(len(PICKLE)) + PICKLE
    assert onnx.ModelProto.FromString(_onnx() + hidden)  # protobuf alone accepts it
    assert _decide(_onnx() + hidden, "onnx") == (Outcome.BLOCKED, Rule.UNREADABLE_MODEL)


def test_a_torch_style_zip_is_refused_under_any_declaration() -> None:
    for fmt in ("onnx", "safetensors", "npy", "json"):
        assert _decide(_zip(), fmt) == (Outcome.BLOCKED, Rule.PICKLE_REFUSED)
