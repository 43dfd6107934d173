"""The hand-written safetensors encoder (used when the package is absent); no torch needed."""

import numpy as np
import pytest
from gpu_training_step.safetensors_files import DTYPES, RawTensor, encode
from safetensors_reader import read


def raw(array: np.ndarray) -> RawTensor:
    return RawTensor(DTYPES[array.dtype.str], tuple(array.shape), array.tobytes())


def test_round_trip_through_an_independent_reader() -> None:
    weights = np.arange(12, dtype="<f4").reshape(3, 4) / 7
    bias = np.array([0.5], dtype="<f4")
    steps = np.array([[1, 2], [3, 4]], dtype="<i8")
    data = encode(
        {"layer.weight": raw(weights), "layer.bias": raw(bias), "steps": raw(steps)},
        {"features": "age,t_stage,n_stage"},
    )
    tensors, metadata = read(data)
    assert metadata == {"features": "age,t_stage,n_stage"}
    np.testing.assert_array_equal(tensors["layer.weight"], weights)
    np.testing.assert_array_equal(tensors["layer.bias"], bias)
    np.testing.assert_array_equal(tensors["steps"], steps)
    header_length = int.from_bytes(data[:8], "little")
    assert header_length % 8 == 0, "the buffer starts 8-byte aligned"


def test_scalars_and_empty_tensors() -> None:
    tensors, metadata = read(
        encode({"scale": raw(np.array(2.0, dtype="<f8")), "none": raw(np.zeros((0, 3), "<f4"))})
    )
    assert tensors["scale"].shape == () and float(tensors["scale"]) == 2.0
    assert tensors["none"].shape == (0, 3)
    assert metadata == {}


def test_inconsistent_tensors_are_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        RawTensor("F32", (2, 2), b"\x00" * 12)
    with pytest.raises(ValueError, match="unsupported"):
        RawTensor("BF17", (1,), b"\x00")


def test_the_safetensors_package_reads_our_files() -> None:
    numpy_loader = pytest.importorskip("safetensors.numpy")
    weights = np.linspace(-1, 1, 6, dtype="<f4").reshape(2, 3)
    loaded = numpy_loader.load(encode({"w": raw(weights)}, {"k": "v"}))
    np.testing.assert_array_equal(loaded["w"], weights)
