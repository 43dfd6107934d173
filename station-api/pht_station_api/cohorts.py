"""Synthetic Lung1-shaped cohorts in the ROO/NCIT vocabulary (for tests, demo and benchmarks).

The marginals follow the public NSCLC-Radiomics "Lung1" clinical table (Aerts et al. 2014, 422
patients): T, N and overall stage, histology, sex, age, survival days and vital status. Overall
stage is drawn first and T/N are then drawn among the combinations that give that stage
(T1–2 N0 → I; T1–2 N1 or T3 N0 → II; T1–3 N2 or T3 N1 → IIIa; any N3 or T4 → IIIb), so every
patient is stage-consistent. Hospital 1 has the published mix; further hospitals get their own
seeded case mixes (stage, histology, sex, age), which is what makes federated examples
interesting. The same seed always gives the same bytes.

The graph shape (see :mod:`pht_contract.vocabulary`): patient ``a ncit:C16960``; sex and age
and the death finding and overall survival are value nodes carrying their value through
``roo:P100042``; the neoplasm carries T/N/M codes directly and overall stage and histology as
literals, which is what the example trains' queries expect.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from pht_contract import vocabulary as voc

DEFAULT_PATIENTS: Final = 422
DEFAULT_GRAPH: Final = "urn:pht:graph:lung1"
BASE_IRI: Final = "https://data.pht.health-ai.nl/synthetic/"
RDF_TYPE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DCT_IDENTIFIER: Final = "http://purl.org/dc/terms/identifier"
AGE_CLASS: Final = voc.ncit("C25150")

STAGES: Final = ("I", "II", "IIIa", "IIIb")
STAGE_P: Final = (0.27, 0.09, 0.25, 0.39)
T_P: Final = {1: 0.24, 2: 0.37, 3: 0.14, 4: 0.25}
N_P: Final = {0: 0.44, 1: 0.06, 2: 0.32, 3: 0.18}
#: Histology shares; the remainder (≈ 12 %) is blank in Lung1 and gets no histology triple.
HISTOLOGY_P: Final = (0.30, 0.26, 0.23, 0.09)
MALE_P: Final = 0.72
DEAD_P: Final = 0.88
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 68.5, 9.8, 42.5, 87.1
AGE_MISSING_P: Final = 0.02
SURVIVAL_MEDIAN_DAYS: Final = 514.0
SURVIVAL_SIGMA: Final = 0.95
SURVIVAL_MIN, SURVIVAL_MAX = 25, 4454
#: Better stages live longer: multipliers of the median survival.
STAGE_SURVIVAL: Final = (2.2, 1.5, 1.0, 0.75)


def overall_stage(t: int, n: int) -> str:
    """The AJCC-6-like rule seen in Lung1 (M0 throughout)."""
    if n == 3 or t == 4:
        return "IIIb"
    if n == 2 or (t == 3 and n == 1):
        return "IIIa"
    if n == 1 or t == 3:
        return "II"
    return "I"


def _combinations() -> dict[str, tuple[list[tuple[int, int]], np.ndarray]]:
    found: dict[str, list[tuple[int, int]]] = {stage: [] for stage in STAGES}
    for t in T_P:
        for n in N_P:
            found[overall_stage(t, n)].append((t, n))
    table: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}
    for stage, combos in found.items():
        weights = np.array([T_P[t] * N_P[n] for t, n in combos])
        table[stage] = (combos, weights / weights.sum())
    return table


_COMBINATIONS: Final = _combinations()


@dataclass(frozen=True)
class CaseMix:
    stage_p: tuple[float, ...]
    histology_p: tuple[float, ...]
    male_p: float
    age_mean: float


def case_mix(seed: int, hospital: int) -> CaseMix:
    """Hospital 1 has Lung1's mix; each other hospital a seeded variation of it."""
    if hospital == 1:
        return CaseMix(STAGE_P, HISTOLOGY_P, MALE_P, AGE_MEAN)
    rng = np.random.default_rng([seed, hospital, 7])
    stage = rng.dirichlet(np.array(STAGE_P) * 30)
    blank = 1 - sum(HISTOLOGY_P)
    hist = rng.dirichlet(np.array((*HISTOLOGY_P, blank)) * 30)[:4]
    return CaseMix(
        tuple(float(x) for x in stage),
        tuple(float(x) for x in hist),
        float(np.clip(MALE_P + rng.normal(0, 0.07), 0.45, 0.9)),
        float(AGE_MEAN + rng.normal(0, 3.0)),
    )


def _iri(value: str) -> str:
    return f"<{value}>"


def _literal(value: str, datatype: str | None = None) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"^^<{datatype}>' if datatype else f'"{escaped}"'


def patient_lines(
    patients: int, seed: int, hospital: int = 1, graph: str | None = None
) -> Iterator[str]:
    """N-Triples (``graph`` None) or N-Quads lines of one hospital's cohort."""
    mix = case_mix(seed, hospital)
    rng = np.random.default_rng([seed, hospital])
    stage_index = rng.choice(4, size=patients, p=np.array(mix.stage_p) / sum(mix.stage_p))
    pick = rng.random(patients)
    male = rng.random(patients) < mix.male_p
    ages = np.clip(rng.normal(mix.age_mean, AGE_SD, patients), AGE_MIN, AGE_MAX).round(1)
    age_missing = rng.random(patients) < AGE_MISSING_P
    hist_p = np.array((*mix.histology_p, max(0.0, 1 - sum(mix.histology_p))))
    histology = rng.choice(5, size=patients, p=hist_p / hist_p.sum())
    dead = rng.random(patients) < DEAD_P
    survival_noise = rng.normal(0, SURVIVAL_SIGMA, patients)
    width = max(3, len(str(patients)))
    suffix = f" {_iri(graph)} .\n" if graph else " .\n"
    base = f"{BASE_IRI}hospital-{hospital}/"
    roo_t, roo_n, roo_m = voc.HAS_T_STAGE, voc.HAS_N_STAGE, voc.HAS_M_STAGE
    for i in range(patients):
        stage = STAGES[stage_index[i]]
        combos, weights = _COMBINATIONS[stage]
        t, n = combos[min(int(np.searchsorted(np.cumsum(weights), pick[i])), len(combos) - 1)]
        ident = f"LUNG1-{i + 1:0{width}d}" if hospital == 1 else f"H{hospital}-{i + 1:0{width}d}"
        p = f"{base}patient/{ident}"
        triples = [
            (p, RDF_TYPE, _iri(voc.PATIENT)),
            (p, DCT_IDENTIFIER, _literal(ident)),
            (p, voc.HAS_SEX, _iri(p + "/sex")),
            (p + "/sex", RDF_TYPE, _iri(voc.SEX)),
            (p + "/sex", voc.HAS_VALUE, _iri(voc.MALE if male[i] else voc.FEMALE)),
            (p, voc.HAS_NEOPLASM, _iri(p + "/tumour")),
            (p + "/tumour", RDF_TYPE, _iri(voc.NEOPLASM)),
            (p + "/tumour", roo_t, _iri(voc.T_CODES[f"T{t}"])),
            (p + "/tumour", roo_n, _iri(voc.N_CODES[f"N{n}"])),
            (p + "/tumour", roo_m, _iri(voc.M_CODES["M0"])),
            (p + "/tumour", voc.HAS_OVERALL_STAGE, _literal(stage)),
            (p, voc.HAS_DEATH_FINDING, _iri(p + "/death")),
            (p + "/death", RDF_TYPE, _iri(voc.DEATH_FINDING)),
            (p + "/death", voc.HAS_VALUE, _iri(voc.DEAD if dead[i] else voc.ALIVE)),
            (p, voc.HAS_SURVIVAL, _iri(p + "/survival")),
            (p + "/survival", RDF_TYPE, _iri(voc.SURVIVAL_DAYS_CLASS)),
            (p + "/survival", voc.HAS_UNIT, _iri(voc.DAYS)),
        ]
        median = SURVIVAL_MEDIAN_DAYS * STAGE_SURVIVAL[stage_index[i]]
        days = int(np.clip(round(median * np.exp(survival_noise[i])), SURVIVAL_MIN, SURVIVAL_MAX))
        triples.append((p + "/survival", voc.HAS_VALUE, _literal(str(days), voc.XSD + "integer")))
        if histology[i] < 4:
            triples.append(
                (p + "/tumour", voc.HAS_HISTOLOGY, _literal(voc.HISTOLOGIES[histology[i]]))
            )
        if not age_missing[i]:
            triples += [
                (p, voc.HAS_AGE_AT_DIAGNOSIS, _iri(p + "/age")),
                (p + "/age", RDF_TYPE, _iri(AGE_CLASS)),
                (p + "/age", voc.HAS_VALUE, _literal(f"{ages[i]:.1f}", voc.XSD + "double")),
            ]
        yield "".join(f"<{s}> <{pr}> {o}{suffix}" for s, pr, o in triples)


def cohort_bytes(
    patients: int = DEFAULT_PATIENTS, seed: int = 0, hospital: int = 1, graph: str | None = None
) -> bytes:
    buffer = io.StringIO()
    for chunk in patient_lines(patients, seed, hospital, graph):
        buffer.write(chunk)
    return buffer.getvalue().encode()
