"""Steward and requester actions on results (external listener).

Every route authenticates a human (TokenReview, or the station-in-a-box identity file) and asks
RBAC about the Train itself before looking anything up:

* stewards (verb ``release`` on the Train) list held results, view what would leave and what
  is withheld, release or block, and read a train's provenance story;
* requesters (verb ``get`` on the Train's ``results`` subresource) download a *released* result
  as JSON or one table as CSV. Before release they learn nothing beyond "not released".
"""

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from pht_contract.aggregates import OutgoingResult
from pht_contract.manifests import IDENTIFIER
from pht_contract.wire import ReleaseDecision
from pht_station_api.deps import (
    RESULTS_SUBRESOURCE,
    VERB_GET,
    VERB_RELEASE,
    HumanDep,
    StateDep,
    authorize,
)
from pht_station_api.disclosure import table_csv
from pht_station_api.errors import NotFound
from pht_station_api.responses import (
    HeldResults,
    ResultOverview,
    ResultView,
    TrainStory,
    refusal,
)
from pht_station_api.results.metrics import result_metrics
from pht_station_api.results.records import ResultRecord
from pht_station_api.routers.results import result_archive

HELD_PATH: Final = "/stewards/held"
STEWARD_RESULT_PATH: Final = "/stewards/results/{namespace}/{name}"
DECISION_PATH: Final = STEWARD_RESULT_PATH + "/decision"
STORY_PATH: Final = STEWARD_RESULT_PATH + "/provenance"
RESULT_JSON_PATH: Final = "/results/{namespace}/{name}"
RESULT_CSV_PATH: Final = RESULT_JSON_PATH + "/tables/{table}"

Namespace = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
Name = Annotated[str, Path(min_length=1, max_length=253)]
TableName = Annotated[str, Path(pattern=IDENTIFIER, max_length=63)]

_AUTH: dict[int | str, dict[str, Any]] = {
    401: refusal("Unauthenticated"),
    403: refusal("Forbidden (RBAC on the Train)"),
    404: refusal("UnknownResult or NotReleased"),
}

router = APIRouter(tags=["stewards"], responses=_AUTH)


def summary(record: ResultRecord) -> dict[str, Any]:
    """What a steward sees in a list: names, state, the rule and findings, no content."""
    return {
        "uid": record.uid,
        "namespace": record.namespace,
        "name": record.name,
        "release": record.release.value,
        "rule": record.rule,
        "findings": record.findings,
        "attempts": len(record.attempts),
        "decidedAt": record.decided_at,
        "decidedBy": record.decided_by,
        "releasedAt": record.released_at,
        "purgedAt": record.purged_at,
    }


@router.get(HELD_PATH, response_model=HeldResults)
async def list_held(state: StateDep, identity: HumanDep) -> dict[str, Any]:
    """Held results of the trains this steward may release."""
    archive = result_archive(state)
    visible = []
    for record in archive.held():
        allowed = await state.identities.allowed(
            identity, VERB_RELEASE, record.namespace, record.name, None
        )
        if allowed:
            visible.append(summary(record))
    result_metrics(state.metrics).set_held(len(archive.held()))
    await run_in_threadpool(archive.purge_if_due)
    return {"items": visible}


@router.get(STEWARD_RESULT_PATH, response_model=ResultView)
async def view_result(
    namespace: Namespace, name: Name, state: StateDep, identity: HumanDep
) -> dict[str, Any]:
    """The decision, and the manifest as it would leave (messages and models included)."""
    await authorize(state, identity, VERB_RELEASE, namespace, name)
    archive = result_archive(state)
    record = archive.find(namespace, name)
    outgoing = await run_in_threadpool(archive.outgoing_for, record, identity.username)
    return {
        **summary(record),
        "outgoing": None if outgoing is None else outgoing.wire(),
    }


@router.post(
    DECISION_PATH,
    response_model=ResultOverview,
    responses={409: refusal("NotHeld")},
)
async def decide_result(
    namespace: Namespace,
    name: Name,
    decision: ReleaseDecision,
    state: StateDep,
    identity: HumanDep,
) -> dict[str, Any]:
    """Release or block a held result; recorded in the provenance chain with its rule."""
    await authorize(state, identity, VERB_RELEASE, namespace, name)
    archive = result_archive(state)
    record = archive.find(namespace, name)
    decided = await run_in_threadpool(
        archive.decide, record.uid, decision, identity.username, state.chain
    )
    metrics = result_metrics(state.metrics)
    metrics.decided(decided.release.value, decided.rule)
    metrics.set_held(len(archive.held()))
    return summary(decided)


@router.get(STORY_PATH, response_model=TrainStory)
async def train_story(
    namespace: Namespace, name: Name, state: StateDep, identity: HumanDep
) -> dict[str, Any]:
    """The train's provenance records, oldest first."""
    await authorize(state, identity, VERB_RELEASE, namespace, name)
    record = result_archive(state).find(namespace, name)
    story = await run_in_threadpool(state.chain.story, record.uid)
    return {"uid": record.uid, "records": [r.canonical() for r in story]}


@router.get(RESULT_JSON_PATH, response_model=OutgoingResult, response_model_exclude_none=True)
async def download_result(
    namespace: Namespace, name: Name, state: StateDep, identity: HumanDep
) -> OutgoingResult:
    """The released result (requesters): the gated manifest and the station's aggregates."""
    await authorize(state, identity, VERB_GET, namespace, name, RESULTS_SUBRESOURCE)
    archive = result_archive(state)
    record = archive.find(namespace, name)
    return await run_in_threadpool(archive.released, record.uid)


@router.get(
    RESULT_CSV_PATH,
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One released table"}},
)
async def download_table(
    namespace: Namespace, name: Name, table: TableName, state: StateDep, identity: HumanDep
) -> Response:
    """One table of the released result as CSV, formula characters neutralised: a table the
    station computed (an aggregate, by its name), or else one the train uploaded — so a train
    cannot pass its own numbers off under the name of the station's."""
    await authorize(state, identity, VERB_GET, namespace, name, RESULTS_SUBRESOURCE)
    archive = result_archive(state)
    record = archive.find(namespace, name)
    manifest = await run_in_threadpool(archive.released, record.uid)
    computed = [a.table for a in manifest.aggregates if a.table is not None]
    for candidate in [*computed, *manifest.tables]:
        if candidate.name == table:
            return Response(
                table_csv(candidate),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{table}.csv"'},
            )
    raise NotFound(f"the released result has no table {table!r}")
