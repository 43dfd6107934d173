"""The federated Cox demo's result: the released model, and its check against lifelines.

The coordinator ends with coefficients, the summed Hessian and each station's last released
round. :func:`cox_model` turns them into a :class:`~pht_contract.survivalmodels.CoxModel`
(standard errors from the inverse of the summed Hessian). :func:`cox_reference_fit` is the
peer: it reads every station's synthetic cohort in one place (possible only because the cohorts
are synthetic), encodes the rows with its own code, and fits ``lifelines.CoxPHFitter``
stratified by station with Efron's ties (lifelines' default). :func:`report_cox` prints both,
the hazard ratios with 95 % confidence intervals and each station's C-index, and writes the
model file.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from pht_contract import vocabulary as voc
from pht_contract.objects import Obj
from pht_contract.survivalmodels import CoxModel, CoxStratum
from pht_contract.trains import TrainSpec

if TYPE_CHECKING:
    from pht_sandbox.federated import ReleasedRound
    from pht_sandbox.stations import LocalStation

#: Federated and lifelines coefficients and standard errors must agree to this (absolute).
AGREEMENT_TOLERANCE: Final = 1e-6
#: lifelines stops when its Newton step is this small (its default, 1e-7, is too loose for a
#: comparison to 1e-6).
LIFELINES_PRECISION: Final = 1e-12
MODEL_FILE: Final = "federated-cox-model.json"

#: How this reference reads the cohort's coded values (independently of the station's reader).
_CODED: Final[dict[str, str]] = {
    voc.MALE: "male",
    voc.FEMALE: "female",
    **{iri: code for codes in (voc.T_CODES, voc.N_CODES) for code, iri in codes.items()},
}
_DEAD: Final[dict[str, int]] = {voc.DEAD: 1, voc.ALIVE: 0}


@dataclass(frozen=True)
class CoxReference:
    """lifelines' fit on the pooled rows, in the order of the model's terms."""

    coefficients: NDArray[np.float64]
    standard_errors: NDArray[np.float64]
    patients: int
    events: int


def _round_spec(template: Obj) -> Any:
    return TrainSpec.model_validate(template["spec"]).aggregates[0]  # type: ignore[index]


def _literal(term: Any) -> float | str | None:
    if term is None:
        return None
    value = str(term.value)
    datatype = getattr(term, "datatype", None)
    if datatype is not None and datatype.value.endswith(("integer", "int", "double", "decimal")):
        return float(value)
    return _CODED.get(value, value)


def pooled_rows(stations: list[LocalStation], template: Obj) -> list[dict[str, Any]]:
    """Every station's patients as the round's terms, days, death and the station's name."""
    from pyoxigraph import NamedNode, RdfFormat, Store

    from pht_sandbox.stations import GRAPH

    spec = _round_spec(template)
    query = template["spec"]["queries"][0]["sparql"]
    rows: list[dict[str, Any]] = []
    for station in stations:
        store = Store()
        with (station.config.work_dir / "cohort.nq").open("rb") as source:
            store.bulk_load(source, RdfFormat.N_QUADS)
        for solution in store.query(query, default_graph=NamedNode(GRAPH)):  # type: ignore[union-attr]
            row = _encoded_row(spec, solution)
            if row is not None:
                rows.append({**row, "station": station.config.name})
    return rows


def _encoded_row(spec: Any, solution: Any) -> dict[str, Any] | None:
    days = _literal(solution[spec.survival.time])
    dead = solution[spec.survival.event]
    if not isinstance(days, float) or dead is None or dead.value not in _DEAD:
        return None
    row: dict[str, Any] = {"days": days, "dead": _DEAD[dead.value]}
    for covariate in spec.covariates:
        value = _literal(solution[covariate.variable])
        if covariate.levels is None:
            if not isinstance(value, float):
                return None
            row[covariate.variable] = (value - covariate.centre) / covariate.scale
            continue
        if value not in (*covariate.reference_values(), *covariate.levels):
            return None
        for level in covariate.levels:
            row[f"{covariate.variable}[{level}]"] = float(value == level)
    return row


def cox_reference_fit(stations: list[LocalStation], template: Obj) -> CoxReference:
    """lifelines' Cox fit on the pooled rows, stratified by station (Efron's ties)."""
    import pandas as pd  # type: ignore[import-untyped]
    from lifelines import CoxPHFitter  # type: ignore[import-untyped]

    terms: list[str] = _round_spec(template).terms()
    frame = pd.DataFrame(pooled_rows(stations, template))
    # Plain column names for lifelines; the order is the model's terms.
    columns = [f"x{i}" for i in range(len(terms))]
    frame = frame.rename(columns=dict(zip(terms, columns, strict=True)))
    fitter = CoxPHFitter().fit(
        frame[[*columns, "days", "dead", "station"]],
        duration_col="days",
        event_col="dead",
        strata=["station"],
        fit_options={"precision": LIFELINES_PRECISION},
    )
    return CoxReference(
        coefficients=fitter.params_[columns].to_numpy(dtype=np.float64),
        standard_errors=fitter.standard_errors_[columns].to_numpy(dtype=np.float64),
        patients=len(frame),
        events=int(frame["dead"].sum()),
    )


def standard_errors(hessian: NDArray[np.float64]) -> NDArray[np.float64]:
    """Square roots of the diagonal of the inverse observed information (−H⁻¹)."""
    errors: NDArray[np.float64] = np.sqrt(np.diag(-np.linalg.inv(hessian)))
    return errors


def cox_model(
    template: Obj,
    beta: NDArray[np.float64],
    hessian: NDArray[np.float64],
    strata: list[tuple[str, ReleasedRound]],
) -> CoxModel:
    """The released model: the declaration's encoding, coefficients and standard errors."""
    spec = _round_spec(template)
    return CoxModel(
        covariates=spec.covariates,
        terms=spec.terms(),
        coefficients=[float(b) for b in beta],
        standard_errors=[float(e) for e in standard_errors(hessian)],
        strata=[
            CoxStratum(
                name=name,
                patients=released.n,
                events=released.events or 0,
                concordance=released.concordance,
            )
            for name, released in strata
        ],
    )


def report_cox(
    template: Obj,
    beta: NDArray[np.float64],
    hessian: NDArray[np.float64],
    strata: list[tuple[str, ReleasedRound]],
    reference: CoxReference,
    converged: bool,
    started: float,
    out_dir: Path,
) -> bool:
    """Print the fit next to lifelines', the hazard ratios and C-indices; write the model.
    True when the rounds converged and both coefficients and standard errors agree."""
    model = cox_model(template, beta, hessian, strata)
    errors = np.array(model.standard_errors)
    print(
        f"\n{'term':>12}  {'federated':>12}  {'lifelines':>12}  {'fed. SE':>10}  "
        f"{'lifelines SE':>12}"
    )
    for term, b, ref_b, se, ref_se in zip(
        model.terms,
        beta,
        reference.coefficients,
        errors,
        reference.standard_errors,
        strict=True,
    ):
        print(f"{term:>12}  {b:12.6f}  {ref_b:12.6f}  {se:10.6f}  {ref_se:12.6f}")
    coefficient_gap = float(np.max(np.abs(beta - reference.coefficients)))
    error_gap = float(np.max(np.abs(errors - reference.standard_errors)))
    agreed = converged and max(coefficient_gap, error_gap) <= AGREEMENT_TOLERANCE
    print(
        f"\nlifelines CoxPHFitter on the pooled {reference.patients} patients "
        f"({reference.events} deaths), stratified by station, Efron ties: max |federated - "
        f"lifelines| = {coefficient_gap:.2e} (coefficients), {error_gap:.2e} (standard "
        f"errors), tolerance {AGREEMENT_TOLERANCE:g}: {'AGREE' if agreed else 'DISAGREE'}; "
        f"{time.monotonic() - started:.1f}s in all"
    )
    print("\nHazard ratios (95 % confidence interval from the summed Hessian):")
    for ratio in model.hazard_ratios():
        print(
            f"  {ratio.term:>12}  HR {ratio.hazard_ratio:6.3f}  "
            f"({ratio.lower:.3f} to {ratio.upper:.3f})"
        )
    print(
        "\nHarrell's C per station at these coefficients (computed and released by each station):"
    )
    for stratum in model.strata:
        shown = "none (no comparable pair)" if stratum.concordance is None else stratum.concordance
        print(
            f"  {stratum.name}: C = {shown}  ({stratum.patients} patients, {stratum.events} deaths)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    path.write_text(json.dumps(model.wire(), indent=2) + "\n")
    print(
        f"\nModel written to {path} (a CoxModel: load it with pht_contract.survivalmodels and "
        "apply it to new patients; stratified by station, it has no shared baseline hazard, "
        "so it gives hazard ratios, not survival probabilities)"
    )
    return agreed and all(math.isfinite(b) for b in model.coefficients)
