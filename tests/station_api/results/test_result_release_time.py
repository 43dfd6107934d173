"""The release time the operator mirrors for researchers is whole minutes; the record keeps
the second for stewards and provenance."""

import datetime
import json
from pathlib import Path

import pytest

from pht_contract import times
from pht_contract.policies import DisclosurePolicy
from pht_contract.trains import ReleaseState
from pht_contract.wire import RunCompletion
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.results import ResultArchive, TrainContext
from pht_station_api.results import archive as archive_module

REVIEWED_DIGEST = "sha256:" + "c" * 64
RELEASED_AT = datetime.datetime(2026, 5, 4, 10, 11, 47, 250000, tzinfo=datetime.UTC)


def _train() -> TrainContext:
    return TrainContext(
        uid="uid-time",
        namespace="research",
        name="km",
        requester="alice",
        organisation="maastro",
        disclosure=DisclosurePolicy.model_validate(
            {
                "reviewed_images": [
                    {
                        "digest": REVIEWED_DIGEST,
                        "reviewer": "steward@station.local",
                        "reviewedAt": "2026-05-01T09:00:00Z",
                        "expiresAt": "2026-08-01T09:00:00Z",
                        "notes": "counts by stage only",
                    }
                ],
                "releasable_variables": [{"name": "stage", "values": ["I", "II"]}],
            }
        ),
        retention_days=7,
        patients=frozenset(f"p{i}" for i in range(60)),
        image="km@" + REVIEWED_DIGEST,
    )


def test_released_at_is_coarse_for_researchers_and_precise_in_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(times, "utc_now", lambda: RELEASED_AT)
    # The gate judges the image review at the same moment.
    monkeypatch.setattr(archive_module, "utc_now", lambda: RELEASED_AT)
    archive = ResultArchive(tmp_path / "results")
    chain = ProvenanceChain.open(None, None)
    table = {
        "name": "stages",
        "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
        "rows": [["I", 30], ["II", 30]],
        "cohortSize": 60,
    }
    archive.upload(_train(), json.dumps({"tables": [table]}).encode(), chain)
    done = archive.complete(
        _train(), RunCompletion(job_succeeded=True, reason="RunCompleted"), 60, chain
    )
    assert done.record.release == ReleaseState.RELEASED
    assert done.record.released_at == "2026-05-04T10:11:47Z"  # the stewards' record
    state = archive.train_state("uid-time", registered=False, progress=None)
    assert state.result is not None
    assert state.result.released_at == "2026-05-04T10:11:00Z"  # what the Train status shows
