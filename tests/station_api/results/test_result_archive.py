"""The result archive: attempts, the decision on the final one, stewards, ledger, retention."""

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from stationkit import current_review

from pht_contract.policies import DisclosurePolicy
from pht_contract.trains import ReleaseState
from pht_contract.wire import ProvenanceKind, ReleaseDecision, RunCompletion
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.results import ResultArchive, TrainContext
from pht_station_api.results.archive import MAX_UPLOADS
from pht_station_api.results.errors import (
    InvalidResult,
    NotHeld,
    NotReleased,
    ResultClosed,
    ResultTooLarge,
    TooManyUploads,
    UnknownResult,
)
from pht_station_api.results.records import ResultRecord

DONE = RunCompletion(job_succeeded=True, reason="RunCompleted")


REVIEWED_DIGEST = "sha256:" + "e" * 64
#: The stores' tests judge what the gate's checks decide: a steward's review of the image counts
#: now and the sample labels are releasable (the default hold has its own test).
REVIEWED = {
    "reviewed_images": [current_review(REVIEWED_DIGEST)],
    "releasable_variables": [{"name": "stage", "values": [f"stage {i}" for i in range(100)]}],
}


def train(
    uid: str = "uid-1",
    name: str = "km",
    image: str = "km@" + REVIEWED_DIGEST,
    patients: range = range(100),
    **policy: Any,
) -> TrainContext:
    return TrainContext(
        uid=uid,
        namespace="research",
        name=name,
        requester="alice",
        organisation="maastro",
        disclosure=DisclosurePolicy.model_validate({**REVIEWED, **policy}),
        retention_days=7,
        patients=frozenset(f"p{i}" for i in patients),
        image=image,
    )


def result(counts: list[int], **extra: Any) -> bytes:
    table = {
        "name": "stages",
        "columns": [{"name": "stage", "role": "Group"}, {"name": "n", "role": "Count"}],
        "rows": [[f"stage {i}", c] for i, c in enumerate(counts)],
        "cohortSize": sum(counts),
    }
    return json.dumps({"tables": [table], **extra}).encode()


def json_model() -> dict[str, Any]:
    data = b'{"coef": [0.5]}'
    return {
        "name": "model.json",
        "format": "json",
        "sha256": hashlib.sha256(data).hexdigest(),
        "sizeBytes": len(data),
        "dataBase64": base64.b64encode(data).decode(),
    }


@pytest.fixture
def chain() -> ProvenanceChain:
    return ProvenanceChain.open(None, None)


@pytest.fixture
def archive(tmp_path: Path) -> ResultArchive:
    return ResultArchive(tmp_path / "results")


def test_attempts_are_numbered_and_the_last_one_is_gated(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    first = archive.upload(train(), result([40, 2, 58]), chain)
    second = archive.upload(train(), result([50, 50]), chain)
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.digest == "sha256:" + hashlib.sha256(result([50, 50])).hexdigest()
    done = archive.complete(train(), DONE, 100, chain)
    record, decision = done.record, done.decision
    assert decision is not None and decision.suppressed_cells == 0
    assert record.release == ReleaseState.RELEASED
    assert archive.released("uid-1").tables[0].rows == [["stage 0", 50], ["stage 1", 50]]
    state = archive.train_state("uid-1", registered=True, progress=None)
    assert state.uploads == 2 and state.release == ReleaseState.RELEASED
    assert state.result is not None and state.result.digest.startswith("sha256:")


def test_refusals(archive: ResultArchive, chain: ProvenanceChain) -> None:
    with pytest.raises(ResultTooLarge):
        archive.upload(train(max_result_bytes=1024), result([10] * 60), chain)
    with pytest.raises(InvalidResult) as invalid:
        archive.upload(train(), b'{"tables": [], "note": "free text"}', chain)
    assert invalid.value.extra["fields"] == ["note"]
    with pytest.raises(InvalidResult):
        archive.upload(train(), b"\x80\x04pickle", chain)
    archive.complete(train(), DONE, 100, chain)
    with pytest.raises(ResultClosed):
        archive.upload(train(), result([50, 50]), chain)
    with pytest.raises(UnknownResult):
        archive.get("nobody")


def test_a_running_train_cannot_fill_the_disk(
    tmp_path: Path, archive: ResultArchive, chain: ProvenanceChain
) -> None:
    """Only the latest attempt stays on disk, and uploads past the cap are refused."""
    folder = tmp_path / "results" / "uid-1"
    for n in range(1, MAX_UPLOADS + 1):
        archive.upload(train(), result([50, 50 + n]), chain)
        assert sorted(p.name for p in folder.glob("attempt-*")) == [f"attempt-{n}.json"]
    before = len(chain.story("uid-1"))
    with pytest.raises(TooManyUploads) as refused:
        archive.upload(train(), result([50, 50]), chain)
    assert (refused.value.status, refused.value.reason) == (409, "TooManyUploads")
    assert len(chain.story("uid-1")) == before  # nothing recorded for a refused upload
    assert archive.train_state("uid-1", True, None).uploads == MAX_UPLOADS
    # the gate decides on the last accepted attempt, whose bytes are still there
    done = archive.complete(train(), DONE, 200, chain)
    assert done.record.release == ReleaseState.RELEASED
    assert archive.released("uid-1").tables[0].rows[1] == ["stage 1", 50 + MAX_UPLOADS]
    # another train is not affected by this one's count
    assert archive.upload(train("uid-2"), result([50, 50]), chain).attempt == 1


def test_no_output_and_failed_runs(archive: ResultArchive, chain: ProvenanceChain) -> None:
    done = archive.complete(train("a"), DONE, 100, chain)
    assert (done.record.release, done.decision) == (ReleaseState.NO_OUTPUT, None)
    archive.upload(train("b"), result([50, 50]), chain)
    failed = RunCompletion(job_succeeded=False, reason="DeadlineExceeded")
    assert archive.complete(train("b"), failed, 100, chain).record.release == ReleaseState.NO_OUTPUT
    with pytest.raises(NotReleased):
        archive.released("b")


def test_completion_is_idempotent(archive: ResultArchive, chain: ProvenanceChain) -> None:
    archive.upload(train(), result([50, 50]), chain)
    archive.complete(train(), DONE, 100, chain)
    records = len(chain)
    again = archive.complete(train(), DONE, 100, chain)
    assert not again.decided_now and again.record.release == ReleaseState.RELEASED
    assert len(chain) == records


def test_held_model_released_by_steward(archive: ResultArchive, chain: ProvenanceChain) -> None:
    archive.upload(train(), result([50, 50], models=[json_model()]), chain)
    record = archive.complete(train(), DONE, 100, chain).record
    assert (record.release, record.rule) == (ReleaseState.HELD, "ManualReleaseRequired")
    state = archive.train_state("uid-1", registered=False, progress=None)
    assert state.release == ReleaseState.HELD and state.result is None
    with pytest.raises(NotReleased):
        archive.released("uid-1")
    assert [r.uid for r in archive.held()] == ["uid-1"]
    preview = archive.outgoing("uid-1")
    assert preview is not None and preview.models[0].name == "model.json"
    decided = archive.decide(
        "uid-1", ReleaseDecision(decision="Release", reason="model reviewed"), "steward-bob", chain
    )
    assert decided.release == ReleaseState.RELEASED and decided.decided_by == "steward-bob"
    assert archive.released("uid-1").models[0].format == "json"
    assert archive.held() == []
    with pytest.raises(NotHeld):
        archive.decide("uid-1", ReleaseDecision(decision="Block", reason="x"), "bob", chain)
    last = chain.story("uid-1")[-1]
    assert last.kind == ProvenanceKind.RELEASE and last.actor == "steward-bob"
    assert last.details["heldBy"] == "ManualReleaseRequired"
    assert "model reviewed" not in json.dumps(last.canonical())


def test_steward_block(archive: ResultArchive, chain: ProvenanceChain) -> None:
    archive.upload(train(), result([50, 50], messages=["loss 0.3"]), chain)
    assert archive.complete(train(), DONE, 100, chain).record.rule == "FreeTextHeld"
    record = archive.decide(
        "uid-1", ReleaseDecision(decision="Block", reason="message leaks"), "steward-bob", chain
    )
    assert (record.release, record.rule) == (ReleaseState.BLOCKED, "StewardBlocked")
    assert archive.outgoing("uid-1") is None


def test_blocked_result_keeps_nothing_to_leave(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    policy = {"small_cell_action": "Block"}
    archive.upload(train(**policy), result([50, 2, 48]), chain)
    record = archive.complete(train(**policy), DONE, 100, chain).record
    assert (record.release, record.rule) == (ReleaseState.BLOCKED, "MinCellCount")
    assert archive.outgoing("uid-1") is None
    assert archive.train_state("uid-1", True, None).rule == "MinCellCount"
    release = chain.story("uid-1")[-1]
    assert release.details["decision"] == "Blocked" and release.details["rule"] == "MinCellCount"


def test_differencing_ledger_spans_trains_and_restarts(
    tmp_path: Path, chain: ProvenanceChain
) -> None:
    archive = ResultArchive(tmp_path / "results")
    archive.upload(train("one"), result([50, 50]), chain)
    assert archive.complete(train("one"), DONE, 100, chain).record.release == ReleaseState.RELEASED
    reopened = ResultArchive(tmp_path / "results")
    assert reopened.get("one").release == ReleaseState.RELEASED
    # Two patients fewer: the same readers would learn both by subtraction.
    two = train("two", name="km-2", patients=range(98))
    reopened.upload(two, result([49, 49]), chain)
    record = reopened.complete(two, DONE, 98, chain).record
    assert (record.release, record.rule) == (ReleaseState.HELD, "Differencing")
    assert record.findings == ["Differencing (patient set near research/km): Held"]
    assert reopened.find("research", "km-2").uid == "two"
    assert chain.verify().ok


def test_retention_purges_content_not_the_decision(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    archive.upload(train(), result([50, 50]), chain)
    archive.complete(train(), DONE, 100, chain)
    assert archive.purge_expired(datetime.now(UTC) + timedelta(days=6)) == []
    assert archive.purge_expired(datetime.now(UTC) + timedelta(days=8)) == ["uid-1"]
    assert archive.get("uid-1").release == ReleaseState.RELEASED
    with pytest.raises(NotReleased):
        archive.released("uid-1")
    assert archive.purge_expired(datetime.now(UTC) + timedelta(days=30)) == []


def _release_record(chain: ProvenanceChain, uid: str) -> dict[str, Any]:
    (release,) = [r for r in chain.story(uid) if r.kind == ProvenanceKind.RELEASE]
    return dict(release.details)


def test_an_automatic_release_names_the_review_in_the_provenance_chain(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    review = current_review(REVIEWED_DIGEST, reviewer="bob@maastro.example")
    review = review.model_copy(update={"link": "https://git.example.org/km/-/merge_requests/7"})
    policy = {"reviewed_images": [review]}
    archive.upload(train(**policy), result([50, 50]), chain)
    done = archive.complete(train(**policy), DONE, 100, chain)
    assert done.record.release == ReleaseState.RELEASED
    details = _release_record(chain, "uid-1")
    assert details["decision"] == "Released"
    assert details["reviewer"] == "bob@maastro.example"
    assert details["reviewDigest"] == REVIEWED_DIGEST
    assert (details["reviewedAt"], details["reviewExpiresAt"]) == (
        review.reviewed_at,
        review.expires_at,
    )
    assert details["reviewLink"] == "https://git.example.org/km/-/merge_requests/7"
    assert review.notes is not None
    assert details["reviewNotesSha256"] == hashlib.sha256(review.notes.encode()).hexdigest()


def test_an_expired_review_is_no_review_the_result_is_held(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    expired = current_review(REVIEWED_DIGEST).model_copy(
        update={
            "reviewed_at": (now - timedelta(days=200)).isoformat().replace("+00:00", "Z"),
            "expires_at": (now - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        }
    )
    policy = {"reviewed_images": [expired]}
    archive.upload(train(**policy), result([50, 50]), chain)
    done = archive.complete(train(**policy), DONE, 100, chain)
    assert (done.record.release, done.record.rule) == (
        ReleaseState.HELD,
        "StewardReviewRequired",
    )
    details = _release_record(chain, "uid-1")
    assert details["decision"] == "Held" and "reviewer" not in details


def test_a_review_of_one_digest_does_not_release_another_image(
    archive: ResultArchive, chain: ProvenanceChain
) -> None:
    other = "km@sha256:" + "f" * 64
    archive.upload(train(image=other), result([50, 50]), chain)
    done = archive.complete(train(image=other), DONE, 100, chain)
    assert (done.record.release, done.record.rule) == (
        ReleaseState.HELD,
        "StewardReviewRequired",
    )
    assert "reviewer" not in _release_record(chain, "uid-1")


def test_an_archived_policy_with_bare_digests_no_longer_trusts_them(tmp_path: Path) -> None:
    """Records written before reviews were recorded still load; their bare digests name no
    reviewer or expiry, so they count for nothing."""
    record = ResultRecord.new(train(), "2026-01-01T00:00:00Z")
    data = record.to_json()
    data["disclosure"] = {**data["disclosure"], "autoReleaseImageDigests": [REVIEWED_DIGEST]}
    data["disclosure"].pop("reviewedImages")
    assert ResultRecord.from_json(data).policy().reviewed_images == []


def test_a_slow_gate_does_not_hold_up_other_trains_or_the_console(
    archive: ResultArchive, chain: ProvenanceChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-encoding four plots at their bounds takes seconds: meanwhile another train uploads
    and a steward's page finds its result."""
    from pht_station_api.results import archive as archive_module

    gating, proceed = threading.Event(), threading.Event()
    real = archive_module.evaluate_bytes

    def slow(*args: Any, **kwargs: Any) -> Any:
        gating.set()
        assert proceed.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(archive_module, "evaluate_bytes", slow)
    archive.upload(train(), result([50, 50]), chain)
    archive.upload(train(uid="uid-2", name="other"), result([50, 50]), chain)
    completing = threading.Thread(target=archive.complete, args=(train(), DONE, 100, chain))
    completing.start()
    try:
        assert gating.wait(10)
        meanwhile = threading.Thread(
            target=lambda: (
                archive.upload(train(uid="uid-2", name="other"), result([60, 40]), chain),
                archive.find("research", "other"),
                archive.held(),
            )
        )
        meanwhile.start()
        meanwhile.join(5)
        assert not meanwhile.is_alive(), "the archive waited for another train's gate"
    finally:
        proceed.set()
        completing.join(10)
    assert archive.get("uid-1").release == ReleaseState.RELEASED
    assert archive.get("uid-2").attempts[-1].attempt == 2


def test_an_upload_during_the_gate_is_the_attempt_decided(
    archive: ResultArchive, chain: ProvenanceChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pht_station_api.results import archive as archive_module

    real = archive_module.evaluate_bytes
    calls: list[bytes] = []

    def racing(raw: bytes, *args: Any, **kwargs: Any) -> Any:
        calls.append(raw)
        if len(calls) == 1:  # the train uploads again while its first attempt is gated
            archive.upload(train(), result([30, 70]), chain)
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(archive_module, "evaluate_bytes", racing)
    archive.upload(train(), result([50, 50]), chain)
    done = archive.complete(train(), DONE, 100, chain)
    assert calls == [result([50, 50]), result([30, 70])]
    assert done.record.release == ReleaseState.RELEASED
    assert archive.released("uid-1").tables[0].rows == [["stage 0", 30], ["stage 1", 70]]
