"""Progress reports from a running train: a percentage and an enumerated stage, nothing else."""

from fastapi import APIRouter, Response

from pht_contract.trains import Progress
from pht_contract.wire import PROGRESS_PATH, ProgressReport
from pht_station_api.deps import RunDep, StateDep
from pht_station_api.registry import iso, utc_now

router = APIRouter(tags=["progress"])


@router.post(PROGRESS_PATH, status_code=204, responses={401: {"description": "Unauthenticated"}})
def report_progress(report: ProgressReport, state: StateDep, train: RunDep) -> Response:
    """Record the train's latest progress; the operator mirrors it into the Train status."""
    progress = Progress(percent=report.percent, stage=report.stage, updated_at=iso(utc_now()))
    state.registry.set_progress(train.uid, progress)
    return Response(status_code=204)
