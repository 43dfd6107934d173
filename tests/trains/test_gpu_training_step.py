"""The GPU training step (runs only where PyTorch is installed; GPU when one is visible)."""

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cohort_answers import answer, manifest_query  # noqa: E402
from gpu_training_step.features import FEATURES, Scaling, features  # noqa: E402
from gpu_training_step.networks import build_model, fit, pick_device  # noqa: E402
from gpu_training_step.train import train_step  # noqa: E402
from safetensors_reader import read  # noqa: E402

from pht_train.resultsets import parse_results  # noqa: E402

pytestmark = pytest.mark.torch
QUERY = manifest_query("gpu-training-step.yaml")


def cohort(patients: int = 300) -> tuple[np.ndarray, np.ndarray]:
    return features(parse_results(answer(QUERY[1], patients)).rows, Scaling())


def test_a_linear_model_takes_the_textbook_gradient_step() -> None:
    x, y = cohort()
    model = build_model(len(FEATURES), hidden=0, seed=3)
    w = model.weight.detach().numpy().astype(np.float64).ravel().copy()
    b = float(model.bias.detach().numpy()[0])
    learning_rate = 0.5
    outcome = fit(model, x, y, epochs=1, learning_rate=learning_rate, device=pick_device())
    # By hand: mean BCE gradient is Xᵀ(σ(Xw + b) − y)/n for w and mean(σ − y) for b.
    xd = x.astype(np.float64)
    p = 1 / (1 + np.exp(-(xd @ w + b)))
    initial = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    w_next = w - learning_rate * xd.T @ (p - y) / len(y)
    b_next = b - learning_rate * np.mean(p - y)
    assert outcome.initial_loss == pytest.approx(initial, rel=1e-5)
    got = model.to("cpu")
    assert got.weight.detach().numpy().ravel() == pytest.approx(w_next, rel=1e-4, abs=1e-6)
    assert float(got.bias.detach().numpy()[0]) == pytest.approx(b_next, rel=1e-4, abs=1e-6)


def test_training_lowers_the_loss() -> None:
    x, y = cohort()
    model = build_model(len(FEATURES), hidden=16, seed=0)
    outcome = fit(model, x, y, epochs=300, learning_rate=0.5, device=pick_device())
    assert outcome.final_loss < outcome.initial_loss
    assert outcome.accuracy > max(y.mean(), 1 - y.mean()) - 0.05


def test_the_train_uploads_a_safetensors_model_and_losses(station_run: Any) -> None:
    parameters = {"epochs": 20, "learningRate": 0.1, "hidden": 8, "seed": 1}
    manifest = station_run(train_step, QUERY, answer(QUERY[1], patients=300), parameters)
    (model,) = manifest["models"]
    assert model["format"] == "safetensors" and model["name"] == "model.safetensors"
    import base64

    tensors, metadata = read(base64.b64decode(model["dataBase64"]))
    assert {k: v.shape for k, v in tensors.items()} == {
        "0.weight": (8, 3),
        "0.bias": (8,),
        "2.weight": (1, 8),
        "2.bias": (1,),
    }
    assert metadata["features"] == "age,t_stage,n_stage"
    stats = {s["name"]: s for s in manifest["statistics"]}
    assert stats["gpu"]["value"] == (1.0 if torch.cuda.is_available() else 0.0)
    assert stats["loss_final"]["value"] < stats["loss_initial"]["value"]
    assert stats["n"]["value"] == stats["n"]["n"] > 0


def test_on_a_gpu_when_one_is_visible() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no GPU visible")
    assert pick_device().type == "cuda"
    x, y = cohort(100)
    outcome = fit(build_model(3, 4, 0), x, y, 5, 0.1, pick_device())
    assert outcome.device == "cuda"
