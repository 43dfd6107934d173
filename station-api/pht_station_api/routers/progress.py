"""Progress reports from a running train: a percentage and an enumerated stage, nothing else.

Every well-formed report from a registered train answers 204, whether the registry kept it or
dropped it (backwards or unchanged; see
:meth:`~pht_station_api.registry.TrainRegistry.offer_progress`): a run cannot tell, and a retried
pod that starts again at ``Starting`` must not fail for it. What is kept becomes visible only at
the next progress tick, so the moment of the request is not what anyone sees.
"""

from fastapi import APIRouter, Response

from pht_contract.wire import PROGRESS_PATH, ProgressReport
from pht_station_api.deps import RunDep, StateDep
from pht_station_api.responses import refusal

router = APIRouter(tags=["progress"])


@router.post(
    PROGRESS_PATH,
    status_code=204,
    responses={401: refusal("Unauthenticated")},
)
def report_progress(report: ProgressReport, state: StateDep, train: RunDep) -> Response:
    """Offer the train's progress to the registry; the operator mirrors what became visible."""
    state.registry.offer_progress(train.uid, report.percent, report.stage)
    return Response(status_code=204)
