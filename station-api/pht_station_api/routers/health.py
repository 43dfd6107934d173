"""Liveness and readiness (both listeners), and Prometheus metrics (the metrics listener only).

``/metrics`` is not on the internal or external listener: the external one is what an Ingress
publishes, and the internal one is what runs reach. It lives on its own listener, behind the
scrape token, and answers with the tick snapshot (:class:`~pht_station_api.metrics.Snapshot`).
"""

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from pht_contract.wire import HEALTH_PATH, METRICS_PATH, READY_PATH
from pht_station_api.deps import StateDep, bearer_token
from pht_station_api.errors import Unauthenticated
from pht_station_api.metrics import Snapshot
from pht_station_api.responses import HealthStatus, refusal

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["metrics"])


@router.get(HEALTH_PATH, response_model=HealthStatus)
def healthz() -> dict[str, str]:
    """The process answers: nothing more (a slow store must not get the pod restarted)."""
    return {"status": "ok"}


@router.get(
    READY_PATH,
    response_model=HealthStatus,
    responses={503: refusal("The data store does not answer")},
)
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


def scraper(request: Request, state: StateDep) -> None:
    """Only a caller holding the metrics token may scrape; no token configured admits no one."""
    expected = state.settings.read_metrics_token()
    token = bearer_token(request)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthenticated("the metrics token is not valid")


@metrics_router.get(
    METRICS_PATH,
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"},
        401: refusal("Unauthenticated: the metrics token is required"),
    },
)
def metrics(request: Request, state: StateDep) -> Response:
    scraper(request, state)
    snapshot = request.app.state.metrics_snapshot
    assert isinstance(snapshot, Snapshot)
    return Response(snapshot.exposition(), media_type=CONTENT_TYPE_LATEST)
