"""Liveness, readiness and Prometheus metrics (served on both listeners)."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pht_contract.wire import HEALTH_PATH, METRICS_PATH, READY_PATH
from pht_station_api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get(HEALTH_PATH)
def healthz() -> dict[str, str]:
    """The process answers: nothing more (a slow store must not get the pod restarted)."""
    return {"status": "ok"}


@router.get(READY_PATH, responses={503: {"description": "The data store does not answer"}})
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when the data store answers a trivial query through a worker."""
    up = await state.store.ping()
    state.metrics.store_up.labels(state.metrics.station).set(1 if up else 0)
    if up:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"reason": "StoreUnavailable", "message": "the data store does not answer"},
        status_code=503,
    )


@router.get(METRICS_PATH, response_class=Response)
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
