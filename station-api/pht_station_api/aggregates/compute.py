"""One declared aggregate from one answer: the function for its kind, with its rules."""

from collections.abc import Callable, Mapping
from typing import Final

from pht_contract.aggregates import AggregateKind, AggregateResult, AggregateSpec
from pht_contract.policies import DisclosurePolicy
from pht_station_api.aggregates.answers import Answer
from pht_station_api.aggregates.models import cox_round, glm_round
from pht_station_api.aggregates.survival import kaplan_meier_table
from pht_station_api.aggregates.tables import count_table, summary_table

AggregateFunction = Callable[
    [AggregateSpec, Answer, Mapping[str, object], DisclosurePolicy], AggregateResult
]

KINDS: Final[Mapping[AggregateKind, AggregateFunction]] = {
    AggregateKind.COUNT: count_table,
    AggregateKind.SUMMARY: summary_table,
    AggregateKind.KAPLAN_MEIER: kaplan_meier_table,
    AggregateKind.GLM_ROUND: glm_round,
    AggregateKind.COX_ROUND: cox_round,
}


def compute(
    spec: AggregateSpec,
    answer: Answer,
    parameters: Mapping[str, object],
    policy: DisclosurePolicy,
) -> AggregateResult:
    """The aggregate as it may leave: computed, then suppressed or withheld by its rules."""
    return KINDS[spec.kind](spec, answer, parameters, policy)
