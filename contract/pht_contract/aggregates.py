"""Aggregates the station computes itself from an approved query's answer.

A Train may declare, in ``spec.aggregates`` and so under approval, numbers the *station*
computes from the answer of one of its approved queries: counts and cross-tabulations by
releasable variables, summary statistics, Kaplan–Meier tables on a fixed time grid, and the
statistics of one model round (the gradient and Hessian of a generalised linear model or of a
stratified Cox partial likelihood with Efron's ties) at coefficients the coordinator sends in a
named parameter, within bounds fixed at approval. No number the algorithm chose is in them, so
after the station's disclosure rules they may be released whatever the image.

The answer is read one row per patient: the query must bind ``?patient`` (or the variable named
in ``patient``) to a patient IRI; later rows of the same patient are ignored, and a patient
whose values cannot be read is left out (and counted as left out, never named).
"""

from enum import StrEnum
from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field, model_validator

from pht_contract.base import ApiModel, DnsLabel
from pht_contract.manifests import IDENTIFIER, Category, ResultManifest, ResultTable

#: SPARQL variable names (without ``?``) an aggregate may read.
VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
Variable = Annotated[str, Field(pattern=VARIABLE, max_length=63)]

MAX_AGGREGATES: Final = 16
MAX_BY: Final = 3
MAX_COVARIATES: Final = 24
MAX_GRID_POINTS: Final = 120


class AggregateKind(StrEnum):
    COUNT = "Count"
    """Patients per combination of ``by`` labels (a one-way or cross table; no ``by``: total)."""
    SUMMARY = "Summary"
    """Count, mean and standard deviation of ``variable`` per combination of ``by`` labels."""
    KAPLAN_MEIER = "KaplanMeier"
    """Survival on the declared time grid, per combination of ``by`` labels."""
    GLM_ROUND = "GlmRound"
    """Gradient, Hessian and log-likelihood of a GLM at the coordinator's coefficients."""
    COX_ROUND = "CoxRound"
    """Gradient, Hessian and log partial likelihood (Efron ties) at the coordinator's
    coefficients; the station is its own stratum."""


class SurvivalColumns(ApiModel):
    """Which query variables hold follow-up time (days) and vital status."""

    time: Variable
    """Follow-up in days (a number)."""
    event: Variable
    """Vital status: ``ncit:C28554`` Dead / ``ncit:C37987`` Alive, a boolean, or 1/0."""


class TimeGrid(ApiModel):
    """Time points fixed at approval: every ``stepDays`` from ``stepDays`` to ``endDays``."""

    step_days: int = Field(ge=1, le=36525)
    """Days between time points (e.g. 182 for every six months)."""
    end_days: int = Field(ge=1, le=36525)
    """The last time point, in days."""

    @model_validator(mode="after")
    def _not_too_many_points(self) -> "TimeGrid":
        if self.end_days < self.step_days:
            raise ValueError("endDays must be at least stepDays")
        if self.end_days // self.step_days > MAX_GRID_POINTS:
            raise ValueError(f"a time grid has at most {MAX_GRID_POINTS} points")
        return self

    def points(self) -> list[int]:
        return list(range(self.step_days, self.end_days + 1, self.step_days))


class Covariate(ApiModel):
    """One model input: a number (optionally centred and scaled) or indicator columns."""

    variable: Variable
    """The query variable the covariate reads."""
    levels: list[Category] | None = Field(default=None, min_length=1, max_length=16)
    """For a categorical variable: one indicator column per level listed; patients with the
    ``reference`` level have all indicators 0; any other value leaves the patient out."""
    reference: Category | None = None
    """For a categorical variable: the level all indicators compare against."""
    also_reference: list[Category] | None = Field(default=None, min_length=1, max_length=16)
    """For a categorical variable: further values counted with the reference level (e.g. stage
    II with stage I as early stage), so their patients stay in the model."""
    centre: float = Field(default=0.0, allow_inf_nan=False)
    """For a numeric variable: the column is ``(value - centre) / scale``."""
    scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    """For a numeric variable: the divisor after centring."""

    @model_validator(mode="after")
    def _levels_need_a_reference(self) -> "Covariate":
        if (self.levels is None) != (self.reference is None):
            raise ValueError("a categorical covariate needs both levels and reference")
        if self.levels is not None and self.reference in self.levels:
            raise ValueError("the reference level must not be one of the indicator levels")
        if self.also_reference is not None:
            if self.levels is None:
                raise ValueError("alsoReference belongs to a categorical covariate")
            pooled = [self.reference, *self.levels, *self.also_reference]
            if len(set(pooled)) != len(pooled):
                raise ValueError("alsoReference must list values that are not levels, once each")
        return self

    def reference_values(self) -> list[Category]:
        """The values encoded as the reference (all indicators 0)."""
        if self.reference is None:
            return []
        return [self.reference, *(self.also_reference or [])]

    def reference_name(self) -> str:
        """The reference as a term would name it, e.g. ``stage[I+II]``."""
        return f"{self.variable}[{'+'.join(self.reference_values())}]"

    def column_names(self) -> list[str]:
        """The model's terms this covariate adds, e.g. ``stage[IIIa]`` or ``age``."""
        if self.levels is None:
            return [self.variable]
        return [f"{self.variable}[{level}]" for level in self.levels]


class HorizonOutcome(ApiModel):
    """A binary outcome from survival data: 1 = alive at the horizon, 0 = died before it.

    A patient censored alive before the horizon has no known outcome and is left out.
    """

    survival: SurvivalColumns
    horizon_days: int = Field(ge=1, le=36525)
    """The horizon in days (e.g. 730 for two-year survival)."""


class CoefficientSource(ApiModel):
    """Where the coordinator's coefficients come from, and the bound fixed at approval."""

    parameter: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", max_length=63)]
    """A key of ``spec.parameters`` holding an object from term name to coefficient (missing
    terms are 0)."""
    max_abs: float = Field(gt=0, le=1000, allow_inf_nan=False)
    """Largest coefficient in absolute value a round may carry."""


class AggregateSpec(ApiModel):
    """One aggregate the station computes from the answer of one approved query."""

    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = ()

    name: Annotated[str, Field(pattern=IDENTIFIER, max_length=63)]
    """The aggregate's name in the released result."""
    query: DnsLabel
    """The name of one of the Train's approved queries."""
    kind: AggregateKind
    """What the station computes: Count, Summary, KaplanMeier, GlmRound or CoxRound."""
    patient: Variable = "patient"
    """The variable bound to the patient IRI; one row per patient is read."""
    by: list[Variable] = Field(default_factory=list, max_length=MAX_BY)
    """Grouping variables (Count, Summary, KaplanMeier); each must be a releasable variable of
    the policy, and its labels come from that variable's values."""
    variable: Variable | None = None
    """The numeric variable a Summary describes."""
    survival: SurvivalColumns | None = None
    """Follow-up and vital status (KaplanMeier, CoxRound)."""
    grid: TimeGrid | None = None
    """The KaplanMeier time grid."""
    overall: bool | None = None
    """KaplanMeier with ``by``: true adds the curve of every patient in the groups, labelled
    ``All``, released only at points where it cannot give back what the groups' rules hid."""
    family: Literal["Binomial", "Gaussian", "Poisson"] | None = None
    """The GlmRound family (canonical link: logit, identity, log)."""
    outcome: Variable | None = None
    """The GlmRound outcome variable (a number; 0/1 for Binomial)."""
    horizon_outcome: HorizonOutcome | None = None
    """Instead of ``outcome``: alive at a horizon, from survival data (Binomial only)."""
    intercept: bool = True
    """GlmRound: add an intercept term named ``intercept``."""
    covariates: list[Covariate] = Field(default_factory=list, max_length=MAX_COVARIATES)
    """Model rounds: the model's inputs, in order."""
    coefficients: CoefficientSource | None = None

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> "AggregateSpec":
        kind = self.kind
        needs: dict[AggregateKind, tuple[str, ...]] = {
            AggregateKind.COUNT: (),
            AggregateKind.SUMMARY: ("variable",),
            AggregateKind.KAPLAN_MEIER: ("survival", "grid"),
            AggregateKind.GLM_ROUND: ("family", "coefficients"),
            AggregateKind.COX_ROUND: ("survival", "coefficients", "covariates"),
        }
        missing = [f for f in needs[kind] if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {kind.value} aggregate needs {', '.join(missing)}")
        if self.overall and (kind is not AggregateKind.KAPLAN_MEIER or not self.by):
            raise ValueError("overall belongs to a KaplanMeier aggregate with 'by'")
        allowed_by = {AggregateKind.COUNT, AggregateKind.SUMMARY, AggregateKind.KAPLAN_MEIER}
        if self.by and kind not in allowed_by:
            raise ValueError(f"a {kind.value} aggregate has no 'by' (the station is the stratum)")
        if kind is AggregateKind.GLM_ROUND:
            if (self.outcome is None) == (self.horizon_outcome is None):
                raise ValueError(
                    "a GlmRound aggregate needs exactly one of outcome and horizonOutcome"
                )
            if self.horizon_outcome is not None and self.family != "Binomial":
                raise ValueError("horizonOutcome is a binary outcome: family Binomial only")
            if not self.intercept and not self.covariates:
                raise ValueError("a GlmRound aggregate needs an intercept or covariates")
        elif (self.family or self.outcome or self.horizon_outcome) or (
            kind is not AggregateKind.COX_ROUND and (self.covariates or self.coefficients)
        ):
            raise ValueError(
                f"covariates, coefficients, family and outcome belong to model rounds, "
                f"not to a {kind.value} aggregate"
            )
        terms = self.terms()
        if len(set(terms)) != len(terms):
            raise ValueError("covariates name the same model term twice")
        return self

    def terms(self) -> list[str]:
        """The model's terms in order (``intercept`` first for a GLM with one)."""
        names = ["intercept"] if self.kind is AggregateKind.GLM_ROUND and self.intercept else []
        for covariate in self.covariates:
            names.extend(covariate.column_names())
        return names


class SuppressedCell(ApiModel):
    """A cell (or a whole row, ``column`` empty) the rules emptied, and the rule."""

    row: int = Field(ge=0)
    column: Annotated[str, Field(max_length=63)] | None = None
    rule: Annotated[str, Field(max_length=64)]


class ModelRound(ApiModel):
    """One station's statistics for one model round, in the order of ``terms``."""

    terms: list[Annotated[str, Field(max_length=160)]] = Field(max_length=MAX_COVARIATES * 16 + 1)
    coefficients: list[float]
    """The coefficients the statistics were computed at (as the coordinator sent them)."""
    n: int = Field(ge=0)
    events: int | None = Field(default=None, ge=0)
    """Deaths (CoxRound)."""
    log_likelihood: float
    gradient: list[float]
    hessian: list[list[float]]
    concordance: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    """CoxRound: Harrell's C-index of the station's patients at these coefficients (the share
    of comparable pairs, a death and a patient known to outlive it, in which the one who died
    first has the higher risk; ties in risk count 1/2), rounded to the policy's significant
    digits; absent when no pair is comparable."""


class AggregateStatus(StrEnum):
    RELEASED = "Released"
    """Computed; released with the suppressions listed."""
    WITHHELD = "Withheld"
    """Computed but nothing of it may leave (the rule says why)."""
    FAILED = "Failed"
    """Not computed: the declaration does not fit the answer (the rule says why)."""


class AggregateResult(ApiModel):
    """An aggregate as released: a table or a model round, its suppressions, and its rule."""

    name: Annotated[str, Field(pattern=IDENTIFIER, max_length=63)]
    kind: AggregateKind
    query: DnsLabel
    status: AggregateStatus
    rule: Annotated[str, Field(max_length=64)] | None = None
    """Why it is withheld or failed, or the rule that suppressed cells; never a value."""
    table: ResultTable | None = None
    model: ModelRound | None = None
    suppressed: list[SuppressedCell] = Field(default_factory=list)
    left_out: int | None = Field(default=None, ge=0)
    """Patients of the answer whose values could not be read, when at least the policy's
    ``minCellCount`` (a smaller number would tell how few patients lack a value)."""


class OutgoingResult(ResultManifest):
    """A result as it leaves: what the algorithm uploaded, after the gate, and the aggregates
    the station computed itself. A train's upload can never carry ``aggregates``: the upload
    is read as a :class:`ResultManifest`, which refuses unknown fields."""

    aggregates: list[AggregateResult] = Field(default_factory=list, max_length=MAX_AGGREGATES)
    """The aggregates the station computed from the approved queries' answers."""
