"""The network and its training loop (PyTorch), on a GPU when one is visible.

Deliberately small: a one-hidden-layer network (``hidden=0`` gives plain logistic
regression) trained full-batch with SGD on binary cross-entropy. What matters for the station
is the path — data through the gateway, compute on the GPU node, a safetensors model out.
"""

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch  # type: ignore[import-not-found, unused-ignore]
from numpy.typing import NDArray

from gpu_training_step.safetensors_files import DTYPES, RawTensor, encode


@dataclass(frozen=True)
class Outcome:
    initial_loss: float
    final_loss: float
    accuracy: float
    device: str


def pick_device() -> Any:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(inputs: int, hidden: int, seed: int) -> Any:
    torch.manual_seed(seed)
    if hidden == 0:
        return torch.nn.Linear(inputs, 1)
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
    )


def fit(
    model: Any,
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    epochs: int,
    learning_rate: float,
    device: Any,
) -> Outcome:
    """``epochs`` full-batch SGD steps; the losses are mean binary cross-entropy."""
    model.to(device)
    features = torch.from_numpy(x).to(device)
    labels = torch.from_numpy(y).to(device).reshape(-1, 1)
    loss_function = torch.nn.BCEWithLogitsLoss()
    optimiser = torch.optim.SGD(model.parameters(), lr=learning_rate)
    with torch.no_grad():
        initial = float(loss_function(model(features), labels))
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = loss_function(model(features), labels)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        logits = model(features)
        final = float(loss_function(logits, labels))
        accuracy = float(((logits > 0).float() == labels).float().mean())
    return Outcome(initial, final, accuracy, device.type)


def state_tensors(model: Any) -> dict[str, NDArray[Any]]:
    """The model's parameters as little-endian NumPy arrays on the CPU."""
    return {
        name: np.ascontiguousarray(tensor.detach().to("cpu").numpy()).astype("<f4")
        for name, tensor in model.state_dict().items()
    }


def to_safetensors(model: Any, metadata: dict[str, str]) -> bytes:
    """The safetensors bytes: the ``safetensors`` package if installed, else by hand."""
    if importlib.util.find_spec("safetensors") is not None:
        library = importlib.import_module("safetensors.torch")
        cpu_state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        return bytes(library.save(cpu_state, metadata=metadata))
    raw = {
        name: RawTensor(DTYPES[array.dtype.str], tuple(array.shape), array.tobytes())
        for name, array in state_tensors(model).items()
    }
    return encode(raw, metadata)
