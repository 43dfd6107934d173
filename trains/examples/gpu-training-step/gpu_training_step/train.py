"""The train: query features, train a few epochs (GPU when present), upload model and losses.

Parameters (the Train's ``parameters`` JSON): ``epochs`` (default 5, at most 10,000),
``learningRate`` (0.01), ``hidden`` units (16; 0 for logistic regression), ``seed`` (0),
``ageCentre``/``ageScale``/``horizonDays`` (70, 10, 730) and ``query`` (``"features"``,
selecting ``?patient ?age ?t ?n ?days ?dead``).

The result: ``model.safetensors`` (held for a steward's release by default) and statistics —
initial and final loss, training accuracy, ``n`` and ``gpu`` (1 when it ran on a GPU).
"""

from gpu_training_step.features import FEATURES, Scaling, features
from gpu_training_step.networks import build_model, fit, pick_device, to_safetensors
from pht_train import ParameterError, ResultManifest, Stage, TrainSession


def scaling(train: TrainSession) -> Scaling:
    scale = Scaling(
        age_centre=train.parameter("ageCentre", float, Scaling.age_centre),
        age_scale=train.parameter("ageScale", float, Scaling.age_scale),
        horizon_days=train.parameter("horizonDays", float, Scaling.horizon_days),
    )
    if scale.age_scale <= 0 or scale.horizon_days <= 0:
        raise ParameterError("ageScale and horizonDays are positive")
    return scale


def train_step(train: TrainSession) -> None:
    epochs = train.parameter("epochs", int, 5)
    learning_rate = train.parameter("learningRate", float, 0.01)
    hidden = train.parameter("hidden", int, 16)
    seed = train.parameter("seed", int, 0)
    if not 1 <= epochs <= 10_000 or not 0 <= hidden <= 4096 or learning_rate <= 0:
        raise ParameterError("epochs 1–10000, hidden 0–4096, learningRate > 0")
    scale = scaling(train)
    train.progress(5, Stage.QUERYING)
    result = train.query(train.parameter("query", str, "features"))
    train.progress(30, Stage.PREPROCESSING)
    x, y = features(result.rows, scale)
    if len(y) == 0:
        raise ParameterError("no patient has all features and a known 2-year outcome")
    device = pick_device()
    model = build_model(len(FEATURES), hidden, seed)
    train.progress(40, Stage.TRAINING)
    outcome = fit(model, x, y, epochs, learning_rate, device)
    train.progress(85, Stage.EVALUATING)
    manifest = ResultManifest()
    metadata = {
        "features": ",".join(FEATURES),
        "hidden": str(hidden),
        "epochs": str(epochs),
        "outcome": f"alive at {scale.horizon_days:g} days",
    }
    manifest.add_model("model.safetensors", to_safetensors(model, metadata), "safetensors")
    n = len(y)
    manifest.add_statistic("loss_initial", outcome.initial_loss, n)
    manifest.add_statistic("loss_final", outcome.final_loss, n)
    manifest.add_statistic("accuracy", outcome.accuracy, n)
    manifest.add_statistic("n", n, n)
    manifest.add_statistic("gpu", 1.0 if outcome.device == "cuda" else 0.0, n)
    train.progress(95, Stage.UPLOADING)
    train.upload(manifest)
