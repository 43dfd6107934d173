"""``pht demo federated``: three stations, one coordinator, a model fitted without pooling data.

Three stations in a box (three synthetic hospitals with different case mixes) each get a
*standing approval* for one kind of Train: a round of a logistic regression for 2-year overall
survival that **the station computes itself** (``spec.aggregates``: a ``GlmRound`` over the
approved query's answer, at the coefficients the coordinator sends, each within ±20). The
approval names the image digest, the query hash, the aggregates hash and the bounds on the
coefficients, for a number of runs and until an expiry, so rounds need no steward to start.
The image (``station-aggregates``) reads and uploads nothing: no number the algorithm chose
is in a round's result, so no steward reviews an image and none releases a result — the
station releases each round's statistics (n, gradient, Hessian, log-likelihood; no rows) after
its own rules (minimum cohort, residual degrees of freedom, small outcome classes and levels).
Each round the coordinator applies one Train per station carrying the current coefficients,
waits for the released statistics, adds them up and takes a Newton step, until the step is
negligible. Then, as a check only possible because the cohorts are synthetic, it fits the same
model on the pooled rows with an independent encoding (the federated-logreg example train's)
and prints both: they agree to the stated tolerance, which shows the algorithm travelled and
the data did not.

With ``--model cox`` each round is a ``CoxRound`` instead (the example Train
examples/trains/federated-cox-round.yaml): a Cox model of overall survival on age, sex and T and
N stage, each station its own stratum, so only the gradient and Hessian of the station's Efron
partial likelihood (with n, deaths and the station's Harrell C-index) leave it. The coordinator
prints hazard ratios with 95 % confidence intervals from the summed Hessian and each station's
C-index, writes the model as a :class:`~pht_contract.survivalmodels.CoxModel`
(``federated-cox-model.json``), and checks coefficients and standard errors against lifelines'
``CoxPHFitter`` on the pooled rows, stratified by station.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import yaml
from numpy.typing import NDArray

from pht_contract import constants
from pht_contract.hashing import aggregates_hash
from pht_contract.objects import Obj
from pht_contract.sparql import query_hash
from pht_contract.times import utc_in
from pht_contract.trains import TrainSpec
from pht_sandbox.federatedcox import cox_reference_fit, report_cox
from pht_sandbox.stations import (
    GRAPH,
    RESEARCHER,
    LocalStation,
    StationConfig,
    fresh_work_dir,
)
from pht_sandbox.terminating import stops_on_sigterm

REPO: Final = Path(__file__).resolve().parents[2]
POLICY_FILE: Final = REPO / "examples" / "policies" / "station-policy.yaml"
TRAIN_FILE: Final = REPO / "examples" / "trains" / "federated-round.yaml"
#: The pooled reference fit encodes the rows with this example train's own code, independent of
#: the station's design matrix.
TRAIN_DIR: Final = REPO / "trains" / "examples" / "federated-logreg"
#: The example train whose query and row encoding the pooled reference uses (its features are
#: the round's terms, in the same order).
REFERENCE_TRAIN_FILE: Final = REPO / "examples" / "trains" / "federated-logreg.yaml"
COX_TRAIN_FILE: Final = REPO / "examples" / "trains" / "federated-cox-round.yaml"
HOSPITALS: Final = (1, 2, 3)
PATIENTS: Final = 300
MAX_ROUNDS: Final = 12

Model = Literal["logistic", "cox"]
MODELS: Final[tuple[Model, ...]] = ("logistic", "cox")
STEP_TOLERANCE: Final = 1e-8
#: Federated and pooled coefficients must agree to this (absolute) tolerance.
AGREEMENT_TOLERANCE: Final = 1e-6
ROUND_TIMEOUT: Final = 120.0
#: How long the coordinator's standing approval stays valid.
APPROVAL_VALIDITY_SECONDS: Final = 30 * 24 * 3600


@dataclass(frozen=True)
class RoundPlan:
    """What differs between the models: the Train template, its aggregate and the names."""

    model: Model
    template_file: Path
    kind: str
    #: Rounds are named ``<prefix>-<round>``; the standing approval ``<prefix>-standing``.
    prefix: str
    description: str


PLANS: Final[dict[Model, RoundPlan]] = {
    "logistic": RoundPlan(
        "logistic",
        TRAIN_FILE,
        "GlmRound",
        "federated-round",
        "Federated 2-year survival model",
    ),
    "cox": RoundPlan(
        "cox",
        COX_TRAIN_FILE,
        "CoxRound",
        "federated-cox-round",
        "Federated Cox model of overall survival, each station its own stratum",
    ),
}


@dataclass(frozen=True)
class ReleasedRound:
    """One station's released statistics for one round."""

    n: int
    gradient: NDArray[np.float64]
    hessian: NDArray[np.float64]
    #: Deaths (Cox rounds).
    events: int | None = None
    #: The station's Harrell C-index at the round's coefficients (Cox rounds).
    concordance: float | None = None


def _load(path: Path) -> Obj:
    document: Obj = yaml.safe_load(path.read_text())
    return document


def _train_module(name: str) -> Any:
    """The example train's own feature encoding (not an installed package: found by path)."""
    if str(TRAIN_DIR) not in sys.path:
        sys.path.insert(0, str(TRAIN_DIR))
    return importlib.import_module(f"federated_logreg.{name}")


def standing_approval(
    template: Obj, runs: int, terms: list[str], plan: RoundPlan = PLANS["logistic"]
) -> Obj:
    """What the stewards approve once for all rounds: this image, query and aggregate
    declaration, for the demo's researcher only, with every coefficient bounded as the
    declaration bounds it (a coordinator free to send any coefficient could make one round's
    statistics single out a patient)."""
    spec = TrainSpec.model_validate(template["spec"])
    bound = coefficient_bound(template)
    coefficients = {
        "name": "coefficients",
        "type": "object",
        "required": True,
        "items": "number",
        "keys": terms,
        "maxItems": len(terms),
        "minimum": -bound,
        "maximum": bound,
    }
    return {
        "apiVersion": constants.GROUP_VERSION,
        "kind": constants.APPROVAL_KIND,
        "metadata": {"name": f"{plan.prefix}-standing", "namespace": "pht-requests"},
        "spec": {
            "standing": {
                "imageDigest": spec.image_digest,
                "queryHashes": [query_hash(q.sparql) for q in spec.queries or []],
                "aggregatesHash": aggregates_hash(spec),
                "requesters": [RESEARCHER],
                "parameters": [coefficients],
                "maxRuns": runs,
                "expiresAt": utc_in(APPROVAL_VALIDITY_SECONDS),
            },
            "decision": "Approve",
            "approver": "steward@station.local",
            "comment": f"{plan.description}: rounds the station computes, no steward each time.",
        },
    }


def coefficient_bound(template: Obj) -> float:
    """The largest coefficient (in absolute value) the round's declaration lets it carry."""
    source = TrainSpec.model_validate(template["spec"]).aggregates[0].coefficients  # type: ignore[index]
    assert source is not None
    return source.max_abs


def round_train(
    template: Obj,
    round_number: int,
    beta: NDArray[np.float64],
    terms: list[str],
    plan: RoundPlan = PLANS["logistic"],
) -> Obj:
    parameters = {"coefficients": {t: float(b) for t, b in zip(terms, beta, strict=True)}}
    return {
        **template,
        "metadata": {**template["metadata"], "name": f"{plan.prefix}-{round_number}"},
        "spec": {**template["spec"], "parameters": json.dumps(parameters)},
    }


def round_statistics(result: Obj, terms: list[str], kind: str = "GlmRound") -> ReleasedRound | str:
    """One station's released round of the given kind, or why there is none."""
    rounds = [a for a in result.get("aggregates") or [] if a.get("kind") == kind]
    if not rounds:
        return "no model round in the released result"
    released = rounds[0]
    model = released.get("model")
    if released.get("status") != "Released" or model is None:
        return f"the round was {released.get('status')} ({released.get('rule')})"
    if model["terms"] != terms:
        return "the round's terms differ from the coordinator's"
    return ReleasedRound(
        n=int(model["n"]),
        gradient=np.array(model["gradient"], dtype=np.float64),
        hessian=np.array(model["hessian"], dtype=np.float64),
        events=model.get("events"),
        concordance=model.get("concordance"),
    )


def pooled_fit(stations: list[LocalStation]) -> tuple[NDArray[np.float64], int]:
    """The reference: the same model fitted on everyone's rows in one place (synthetic only),
    with the federated-logreg example train's own encoding of the rows."""
    from pyoxigraph import Literal, NamedNode, RdfFormat, Store

    features_module = _train_module("features")
    template = _load(REFERENCE_TRAIN_FILE)
    query = template["spec"]["queries"][0]["sparql"]
    rows: list[dict[str, Any]] = []
    for station in stations:
        store = Store()
        with (station.config.work_dir / "cohort.nq").open("rb") as source:
            store.bulk_load(source, RdfFormat.N_QUADS)
        for solution in store.query(query, default_graph=NamedNode(GRAPH)):  # type: ignore[union-attr]
            row: dict[str, Any] = {}
            for variable in ("patient", "age", "sex", "stage", "days", "dead"):
                term = solution[variable]
                if isinstance(term, Literal) and term.datatype.value.endswith(("integer", "int")):
                    row[variable] = int(term.value)
                elif isinstance(term, Literal) and term.datatype.value.endswith(
                    ("decimal", "double", "float")
                ):
                    row[variable] = float(term.value)
                else:
                    row[variable] = None if term is None else term.value
            rows.append(row)
    parameters = json.loads(template["spec"]["parameters"])
    scaling = features_module.Scaling(
        age_centre=float(parameters["ageCentre"]),
        age_scale=float(parameters["ageScale"]),
        horizon_days=float(parameters["horizonDays"]),
    )
    data = features_module.design(rows, scaling)
    x, y = np.asarray(data.x), np.asarray(data.y)
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (y - p)
        hessian = -(x.T * (p * (1.0 - p))) @ x
        step = np.linalg.solve(hessian, gradient)
        beta = beta - step
        if np.max(np.abs(step)) < STEP_TOLERANCE:
            break
    return beta, len(y)


def lifelines_missing() -> str | None:
    """Why the Cox demo cannot check its fit, or None when lifelines is installed."""
    if importlib.util.find_spec("lifelines") is None:
        return (
            "the Cox demo checks its fit against lifelines, which is not installed "
            "(pip install lifelines, or 'make setup' for the test extra)"
        )
    return None


@stops_on_sigterm
async def federated_demo(
    work_dir: Path, out_dir: Path, once: bool, model: Model = "logistic"
) -> int:
    plan = PLANS[model]
    if model == "cox" and (missing := lifelines_missing()) is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    print(
        "Federated demo: three stations in a box (EMULATED clusters, trains as LOCAL "
        "processes, SYNTHETIC hospitals). Only released statistics reach the coordinator.\n"
    )
    started = time.monotonic()
    work_dir = fresh_work_dir(work_dir)
    template = _load(plan.template_file)
    terms = TrainSpec.model_validate(template["spec"]).aggregates[0].terms()  # type: ignore[index]
    async with contextlib.AsyncExitStack() as stack:
        stations: list[LocalStation] = []
        for hospital in HOSPITALS:
            config = StationConfig(
                f"hospital-{hospital}",
                work_dir / f"hospital-{hospital}",
                patients=PATIENTS,
                hospital=hospital,
                policy_file=POLICY_FILE,
            )
            stations.append(await stack.enter_async_context(LocalStation(config)))
        approval = standing_approval(template, MAX_ROUNDS, terms, plan)
        standing = approval["spec"]["standing"]
        print(
            "Each round is a Train whose statistics the STATION computes (spec.aggregates: a "
            f"{plan.kind}\nover the approved query's answer); its image reads and uploads "
            "nothing, so no steward\nreviews an image or releases a round. The stewards approve "
            "the rounds once:\n"
            f"  standing: {{imageDigest: {standing['imageDigest'][:19]}…, queryHashes: "
            f"[{standing['queryHashes'][0][:12]}…],\n"
            f"             aggregatesHash: {standing['aggregatesHash'][:12]}…, coefficients "
            f"within ±{coefficient_bound(template):g}, maxRuns: {MAX_ROUNDS}}}"
        )
        for station in stations:
            await station.apply(_load(POLICY_FILE), constants.POLICY_PLURAL)
            await station.apply(approval, constants.APPROVAL_PLURAL)
        print(
            f"3 stations up in {time.monotonic() - started:.1f}s, each with a standing "
            f"approval for {MAX_ROUNDS} rounds of {template['spec']['image'].split('@')[0]}"
        )
        fit = await newton_rounds(stations, template, terms, plan)
        if fit is None:
            return 1
        if model == "cox":
            reference = cox_reference_fit(stations, template)
            agreed = report_cox(
                template,
                fit.beta,
                fit.hessian,
                [(s.config.name, r) for s, r in zip(stations, fit.last_round, strict=True)],
                reference,
                fit.converged,
                started,
                out_dir,
            )
        else:
            pooled, pooled_n = pooled_fit(stations)
            report(terms, fit.beta, pooled, pooled_n, fit.converged, started, out_dir)
            agreed = fit.converged and agree(fit.beta, pooled)
        if not once:
            print("\nThe three stations keep running (Ctrl-C stops them):")
            for station in stations:
                print(f"  {station.config.name}: export kubeconfig={station.urls.kubeconfig}")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    return 0 if agreed else 1


@dataclass(frozen=True)
class NewtonFit:
    """Where the rounds ended."""

    #: Logistic: the coefficients after the last Newton step. Cox: the coefficients of the last
    #: round (whose Newton step was negligible), so the standard errors and C-indices the
    #: stations computed at them are exactly at the reported coefficients.
    beta: NDArray[np.float64]
    #: The summed Hessian of the last round.
    hessian: NDArray[np.float64]
    #: Each station's last released round, in the order of the stations.
    last_round: list[ReleasedRound]
    converged: bool


async def newton_rounds(
    stations: list[LocalStation], template: Obj, terms: list[str], plan: RoundPlan
) -> NewtonFit | None:
    """Newton's method over the stations' released rounds; None when a round fails."""
    beta = np.zeros(len(terms))
    hessian = np.zeros((len(terms), len(terms)))
    released: list[ReleasedRound] = []
    for round_number in range(1, MAX_ROUNDS + 1):
        doc = round_train(template, round_number, beta, terms, plan)
        trains = await asyncio.gather(*(s.apply(doc, constants.TRAIN_PLURAL) for s in stations))
        name = trains[0]["metadata"]["name"]
        finals = await asyncio.gather(
            *(s.wait_for(name, lambda _t: False, ROUND_TIMEOUT) for s in stations)
        )
        for station, final in zip(stations, finals, strict=True):
            summary = (final.get("status") or {}).get("summary")
            if summary != "Succeeded":
                print(f"round {round_number}: {station.config.name} ended {summary}")
                return None
        results = await asyncio.gather(*(s.released_result(name) for s in stations))
        released = []
        for station, result in zip(stations, results, strict=True):
            statistics = round_statistics(result, terms, plan.kind)
            if isinstance(statistics, str):
                print(f"round {round_number}: {station.config.name}: {statistics}")
                return None
            released.append(statistics)
        n = sum(r.n for r in released)
        gradient = np.sum([r.gradient for r in released], axis=0)
        hessian = np.sum([r.hessian for r in released], axis=0)
        step = np.linalg.solve(hessian, gradient)
        events = f", deaths {sum(r.events or 0 for r in released)}" if plan.model == "cox" else ""
        print(
            f"round {round_number}: n={n} ({', '.join(str(r.n) for r in released)}){events}, "
            f"max |Newton step| = {np.max(np.abs(step)):.2e}"
        )
        converged = bool(np.max(np.abs(step)) < STEP_TOLERANCE)
        if not (converged and plan.model == "cox"):
            beta = beta - step
        if converged:
            return NewtonFit(beta, hessian, released, True)
    return NewtonFit(beta, hessian, released, False)


def agree(beta: NDArray[np.float64], pooled: NDArray[np.float64]) -> bool:
    return float(np.max(np.abs(beta - pooled))) <= AGREEMENT_TOLERANCE


def report(
    features: list[str],
    beta: NDArray[np.float64],
    pooled: NDArray[np.float64],
    pooled_n: int,
    converged: bool,
    started: float,
    out_dir: Path,
) -> None:
    difference = float(np.max(np.abs(beta - pooled)))
    print(f"\n{'feature':>12}  {'federated':>12}  {'pooled':>12}")
    for feature, fed, pool in zip(features, beta, pooled, strict=True):
        print(f"{feature:>12}  {fed:12.6f}  {pool:12.6f}")
    agreed = converged and agree(beta, pooled)
    print(
        f"\npooled fit on {pooled_n} patients; max |federated - pooled| = {difference:.2e} "
        f"(tolerance {AGREEMENT_TOLERANCE:g}): {'AGREE' if agreed else 'DISAGREE'}; "
        f"{time.monotonic() - started:.1f}s in all"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "federated-coefficients.json").write_text(
        json.dumps(
            {
                "features": features,
                "federated": [float(b) for b in beta],
                "pooled": [float(b) for b in pooled],
                "maxAbsoluteDifference": difference,
                "tolerance": AGREEMENT_TOLERANCE,
            },
            indent=2,
        )
    )
