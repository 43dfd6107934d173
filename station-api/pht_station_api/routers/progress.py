"""Progress reports from a running train: a percentage and an enumerated stage, nothing else.

Every well-formed report from a registered train answers 204, whether the registry recorded it
or dropped it (backwards, unchanged, or within the throttle interval; see
:meth:`~pht_station_api.registry.TrainRegistry.set_progress`): a run cannot tell, and a retried
pod that starts again at ``Starting`` must not fail for it.
"""

from fastapi import APIRouter, Response

from pht_contract.trains import Progress
from pht_contract.wire import PROGRESS_PATH, ProgressReport
from pht_station_api.deps import RunDep, StateDep
from pht_station_api.registry import iso, utc_now

router = APIRouter(tags=["progress"])


@router.post(PROGRESS_PATH, status_code=204, responses={401: {"description": "Unauthenticated"}})
def report_progress(report: ProgressReport, state: StateDep, train: RunDep) -> Response:
    """Offer the train's progress to the registry; the operator mirrors what it recorded."""
    progress = Progress(percent=report.percent, stage=report.stage, updated_at=iso(utc_now()))
    state.registry.set_progress(train.uid, progress)
    return Response(status_code=204)
