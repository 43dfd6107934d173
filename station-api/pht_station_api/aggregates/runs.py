"""Computing a finished run's declared aggregates from its approved queries' answers.

When the operator reports that a run's Job succeeded, the station itself asks each approved
query an aggregate names — the stored approved text, through the same checks, dataset, row cap
and minimum-patients rule as the train's own requests, audited in the provenance chain under
the station's name — reads the answer as one record per patient, and computes each aggregate
with its disclosure rules (:mod:`.compute`). Nothing the algorithm sent is read: the numbers
depend only on the approved query, the data and the declaration the steward approved.

The patients those answers bind count for the audited cohort and the differencing ledger, as
the train's own queries do.
"""

import logging
import time
from typing import Final

from pht_contract.aggregates import AggregateResult
from pht_contract.parameters import ParameterRefusal, parse_parameters
from pht_station_api.aggregates.answers import AnswerUnreadable, read_answer
from pht_station_api.aggregates.compute import compute
from pht_station_api.aggregates.tables import failed
from pht_station_api.errors import StationApiError
from pht_station_api.gateway.executions import Answer as QueryAnswer
from pht_station_api.gateway.executions import QueryRequest, run_query
from pht_station_api.registry import RegisteredTrain
from pht_station_api.state import StationState

log = logging.getLogger(__name__)

#: Who asks the queries, in the provenance chain.
STATION_ACTOR: Final = "station:aggregates"
SPARQL_JSON: Final = "application/sparql-results+json"


async def compute_for_run(state: StationState, train: RegisteredTrain) -> list[AggregateResult]:
    """Every declared aggregate of ``train``, in declaration order (empty when none)."""
    registration = train.registration
    if not registration.aggregates:
        return []
    try:
        parameters = parse_parameters(registration.parameters)
    except ParameterRefusal:
        return [failed(spec, "InvalidParameters") for spec in registration.aggregates]
    answers: dict[str, QueryAnswer | str] = {}
    results: list[AggregateResult] = []
    for spec in registration.aggregates:
        if spec.query not in answers:
            answers[spec.query] = await _answer(state, train, spec.query)
        served = answers[spec.query]
        if isinstance(served, str):
            results.append(failed(spec, served))
            continue
        try:
            answer = read_answer(served.body, spec.patient, served.patients)
        except AnswerUnreadable:
            results.append(failed(spec, "AnswerUnreadable"))
            continue
        try:
            results.append(compute(spec, answer, parameters, registration.policy.disclosure))
        except Exception:  # a computing bug must fail this aggregate, never the completion
            log.exception("computing an aggregate failed unexpectedly")
            results.append(failed(spec, "ComputationFailed"))
    return results


async def _answer(state: StationState, train: RegisteredTrain, name: str) -> QueryAnswer | str:
    """The approved query's answer as SPARQL JSON, or the reason it was refused."""
    request = QueryRequest(text=None, accept=SPARQL_JSON, default_graph_uris=[],
                           named_graph_uris=[], name=name)  # fmt: skip
    try:
        return await run_query(state, train, request, time.perf_counter(), STATION_ACTOR)
    except StationApiError as refusal:
        return refusal.reason
