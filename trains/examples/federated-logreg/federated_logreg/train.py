"""The train: one station's gradient and Hessian at the coordinator's current coefficients.

Parameters (the Train's ``parameters`` JSON):

* ``coefficients`` — ``{feature: value}`` for the features in :data:`FEATURES` (missing ones
  are 0, so round one may pass ``{}``);
* ``ageCentre``, ``ageScale``, ``horizonDays`` — shared by every station (defaults 70, 10,
  730 — two years);
* ``query`` — the named query (default ``"cohort"``) selecting ``?patient ?age ?sex ?stage
  ?days ?dead``.

The result holds statistics only — ``n``, the log-likelihood, the gradient and the Hessian's
upper triangle, each with its ``n`` — never a row.
"""

import numpy as np
from numpy.typing import NDArray

from federated_logreg.features import FEATURES, Scaling, design
from federated_logreg.newton import local_step, to_statistics
from pht_train import ParameterError, ResultManifest, Stage, TrainSession


def coefficients(train: TrainSession) -> NDArray[np.float64]:
    given = train.parameter("coefficients", dict, {})
    unknown = sorted(set(given) - set(FEATURES))
    if unknown:
        raise ParameterError(f"coefficients for unknown features: {', '.join(unknown)}")
    values = [given.get(f, 0.0) for f in FEATURES]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ParameterError("coefficients are numbers")
    return np.array(values, dtype=np.float64)


def scaling(train: TrainSession) -> Scaling:
    scale = Scaling(
        age_centre=train.parameter("ageCentre", float, Scaling.age_centre),
        age_scale=train.parameter("ageScale", float, Scaling.age_scale),
        horizon_days=train.parameter("horizonDays", float, Scaling.horizon_days),
    )
    if scale.age_scale <= 0 or scale.horizon_days <= 0:
        raise ParameterError("ageScale and horizonDays are positive")
    return scale


def step(train: TrainSession) -> None:
    beta = coefficients(train)
    scale = scaling(train)
    train.progress(10, Stage.QUERYING)
    result = train.query(train.parameter("query", str, "cohort"))
    train.progress(50, Stage.COMPUTING)
    data = design(result.rows, scale)
    local = local_step(data.x, data.y, beta)
    manifest = ResultManifest()
    manifest.add_statistic("n", local.n, local.n)
    for name, value in to_statistics(local, FEATURES).items():
        manifest.add_statistic(name, value, local.n)
    train.progress(90, Stage.UPLOADING)
    train.upload(manifest)
