"""Results that carry aggregates the station computed: released whatever the image, and
never forgeable by a train's upload."""

import json
from pathlib import Path

import pytest
from test_result_archive import DONE, result, train

from pht_contract.aggregates import AggregateKind, AggregateResult, AggregateStatus
from pht_contract.manifests import ResultTable
from pht_contract.trains import ReleaseState
from pht_contract.wire import ProvenanceKind, RunCompletion
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.results import ResultArchive
from pht_station_api.results.errors import InvalidResult

UNREVIEWED = "km@sha256:" + "0" * 64


def stage_counts(cohort: int = 100) -> AggregateResult:
    table = ResultTable.model_validate(
        {
            "name": "stages",
            "columns": [{"name": "stage", "role": "Group"}, {"name": "patients", "role": "Count"}],
            "rows": [["I", 60], ["II", None]],
            "cohortSize": cohort,
        }
    )
    return AggregateResult(
        name="stages",
        kind=AggregateKind.COUNT,
        query="survival",
        status=AggregateStatus.RELEASED,
        rule="MinCellCount",
        table=table,
        suppressed=[{"row": 1, "column": "patients", "rule": "MinCellCount"}],
    )


@pytest.fixture
def chain() -> ProvenanceChain:
    return ProvenanceChain.open(None, None)


@pytest.fixture
def archive(tmp_path: Path) -> ResultArchive:
    return ResultArchive(tmp_path / "results")


def test_station_aggregates_alone_are_released_whatever_the_image(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    done = archive.complete(train(image=UNREVIEWED), DONE, 100, chain, [stage_counts()])
    assert done.record.release == ReleaseState.RELEASED and done.record.rule is None
    released = archive.released("uid-1")
    assert released.tables == [] and [a.name for a in released.aggregates] == ["stages"]
    assert released.aggregates[0].table is not None
    assert released.aggregates[0].table.rows == [["I", 60], ["II", None]]
    record = chain.records()[-1]
    assert record.kind == ProvenanceKind.RELEASE
    assert record.details["aggregates"] == "stages: Released (MinCellCount)"


def test_a_policy_that_holds_everything_holds_station_aggregates_too(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    context = train(image=UNREVIEWED, manual_release_for_all=True)
    done = archive.complete(context, DONE, 100, chain, [stage_counts()])
    assert done.record.release == ReleaseState.HELD
    assert done.record.rule == "ManualReleaseRequired"
    outgoing = archive.outgoing("uid-1")
    assert outgoing is not None and outgoing.aggregates[0].name == "stages"


def test_station_aggregates_ride_with_an_upload_and_share_its_decision(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    archive.upload(train(image=UNREVIEWED), result([50, 50]), chain)
    done = archive.complete(train(image=UNREVIEWED), DONE, 100, chain, [stage_counts()])
    # The algorithm's own numbers still wait for a steward; the aggregates wait with them.
    assert done.record.release == ReleaseState.HELD
    assert done.record.rule == "StewardReviewRequired"
    outgoing = archive.outgoing("uid-1")
    assert outgoing is not None
    assert [t.name for t in outgoing.tables] == ["stages"] and len(outgoing.aggregates) == 1


def test_a_failed_run_releases_nothing_even_with_aggregates(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    failed = RunCompletion(job_succeeded=False, reason="BackoffLimitExceeded")
    done = archive.complete(train(image=UNREVIEWED), failed, 100, chain, [stage_counts()])
    assert done.record.release == ReleaseState.NO_OUTPUT


def test_station_aggregates_near_an_earlier_cohort_are_held_for_differencing(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    first = train(uid="uid-1", image=UNREVIEWED, patients=range(100))
    assert archive.complete(first, DONE, 100, chain, [stage_counts(100)]).record.release == (
        ReleaseState.RELEASED
    )
    # The same aggregate over all but one of those patients tells that patient's stage.
    second = train(uid="uid-2", name="km-2", image=UNREVIEWED, patients=range(99))
    done = archive.complete(second, DONE, 99, chain, [stage_counts(99)])
    assert done.record.release == ReleaseState.HELD and done.record.rule == "Differencing"


def test_a_train_cannot_upload_aggregates_of_its_own(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    forged = json.loads(result([50, 50]))
    forged["aggregates"] = [stage_counts().model_dump(mode="json", by_alias=True)]
    with pytest.raises(InvalidResult):
        archive.upload(train(image=UNREVIEWED), json.dumps(forged).encode(), chain)
