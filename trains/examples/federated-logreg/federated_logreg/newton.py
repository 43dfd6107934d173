"""The maths of one federated Newton step: local sums at each station, one update centrally.

For logistic regression the log-likelihood, its gradient and its Hessian are sums over
patients, so each station can send its own sums — gradient g = Xᵀ(y − p) and Hessian
H = −Xᵀ diag(p(1 − p)) X at the current coefficients β — and the coordinator adds them up and
takes the Newton step β ← β − H⁻¹g. The pooled fit is reached without any patient row leaving
a station; only d + d(d+1)/2 + 2 numbers travel per station and round.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class LocalStep:
    """One station's sums at the current coefficients."""

    n: int
    log_likelihood: float
    gradient: NDArray[np.float64]
    hessian: NDArray[np.float64]


def local_step(
    x: NDArray[np.float64], y: NDArray[np.float64], beta: NDArray[np.float64]
) -> LocalStep:
    eta = x @ beta
    # log(1 + e^η) computed stably for large |η|.
    log_likelihood = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    p = 1.0 / (1.0 + np.exp(-eta))
    gradient = x.T @ (y - p)
    hessian = -(x.T * (p * (1.0 - p))) @ x
    return LocalStep(len(y), log_likelihood, gradient, hessian)


def combine(steps: Iterable[LocalStep]) -> LocalStep:
    """The pooled sums: what one station holding everyone's data would have computed."""
    steps = list(steps)
    if not steps:
        raise ValueError("no station contributed")
    return LocalStep(
        n=sum(s.n for s in steps),
        log_likelihood=sum(s.log_likelihood for s in steps),
        gradient=np.sum([s.gradient for s in steps], axis=0),
        hessian=np.sum([s.hessian for s in steps], axis=0),
    )


def newton_update(beta: NDArray[np.float64], pooled: LocalStep) -> NDArray[np.float64]:
    """β − H⁻¹g (solved, not inverted)."""
    return beta - np.linalg.solve(pooled.hessian, pooled.gradient)


def statistic_names(features: Sequence[str]) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Names of the gradient entries and of the Hessian's upper triangle (it is symmetric)."""
    gradient = [f"gradient_{f}" for f in features]
    hessian = [
        (i, j, f"hessian_{features[i]}__{features[j]}")
        for i in range(len(features))
        for j in range(i, len(features))
    ]
    return gradient, hessian


def to_statistics(step: LocalStep, features: Sequence[str]) -> dict[str, float]:
    gradient_names, hessian_names = statistic_names(features)
    values = {"log_likelihood": step.log_likelihood}
    values.update({name: float(g) for name, g in zip(gradient_names, step.gradient, strict=True)})
    values.update({name: float(step.hessian[i, j]) for i, j, name in hessian_names})
    return values


def from_statistics(values: Mapping[str, float], n: int, features: Sequence[str]) -> LocalStep:
    """A station's released statistics back into a :class:`LocalStep` (the coordinator's side)."""
    gradient_names, hessian_names = statistic_names(features)
    d = len(features)
    hessian = np.zeros((d, d))
    for i, j, name in hessian_names:
        hessian[i, j] = hessian[j, i] = values[name]
    return LocalStep(
        n=n,
        log_likelihood=float(values["log_likelihood"]),
        gradient=np.array([values[name] for name in gradient_names], dtype=np.float64),
        hessian=hessian,
    )
