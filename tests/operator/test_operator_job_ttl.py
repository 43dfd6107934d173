"""After the outcome the run's Job gets its TTL: from the watch cache when it holds the
recorded Job, asked for otherwise, never set on a Job that is not the recorded one."""

from __future__ import annotations

from typing import Any

from operator_harness import RUN_NS, STATION_NS, operator_settings

from pht_operator import endings
from pht_operator.clusterview import ClusterView
from pht_operator.kube import JOBS, ApiError
from pht_operator.passes import Context, TrainPass

JOB = "pht-run-km-1234"
RUN = {"namespace": RUN_NS, "jobName": JOB, "jobUid": "job-uid-1"}


class RecordingKube:
    """Answers GETs of the Job from ``stored`` and records every call."""

    def __init__(self, stored: dict[str, Any] | None, patch_error: ApiError | None = None):
        self.stored = stored
        self.patch_error = patch_error
        self.calls: list[tuple[str, str, Any]] = []

    async def get_or_none(self, res: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", name, None))
        return self.stored

    async def merge_patch(
        self, res: Any, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        assert res is JOBS
        self.calls.append(("patch", name, patch))
        if self.patch_error is not None:
            raise self.patch_error
        return {}


def _job(uid: str, ttl: int | None = None) -> dict[str, Any]:
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return {"metadata": {"name": JOB, "namespace": RUN_NS, "uid": uid}, "spec": spec}


def _train(kube: RecordingKube, cached: dict[str, Any] | None) -> TrainPass:
    view = ClusterView()
    if cached is not None:
        view.jobs["train-uid"] = cached
    ctx = Context(
        settings=operator_settings("http://127.0.0.1:1"),
        kube=kube,  # type: ignore[arg-type]
        station=None,  # type: ignore[arg-type]
        metrics=None,  # type: ignore[arg-type]
        view=view,
        events=lambda *args: None,
    )
    body = {
        "metadata": {"uid": "train-uid", "name": "km", "namespace": STATION_NS},
        "status": {"run": RUN},
    }
    return TrainPass(ctx, body)


async def test_the_cached_job_is_patched_without_asking_for_it() -> None:
    kube = RecordingKube(stored=None)
    await endings._set_job_ttl(_train(kube, _job("job-uid-1")), RUN)
    assert kube.calls == [("patch", JOB, {"spec": {"ttlSecondsAfterFinished": 600}})]


async def test_a_job_that_has_its_ttl_is_left_alone() -> None:
    kube = RecordingKube(stored=None)
    await endings._set_job_ttl(_train(kube, _job("job-uid-1", ttl=600)), RUN)
    assert kube.calls == []


async def test_without_the_recorded_job_in_the_cache_it_is_asked_for() -> None:
    kube = RecordingKube(stored=_job("job-uid-1"))
    await endings._set_job_ttl(_train(kube, None), RUN)
    assert [call[0] for call in kube.calls] == ["get", "patch"]


async def test_a_job_of_the_same_name_that_is_not_the_run_s_is_never_patched() -> None:
    kube = RecordingKube(stored=_job("someone-elses"))
    await endings._set_job_ttl(_train(kube, _job("someone-elses")), RUN)
    assert kube.calls == [("get", JOB, None)]


async def test_a_job_gone_before_its_ttl_was_set_is_no_error() -> None:
    kube = RecordingKube(stored=None, patch_error=ApiError(404, "NotFound", "gone"))
    await endings._set_job_ttl(_train(kube, _job("job-uid-1")), RUN)
    assert [call[0] for call in kube.calls] == ["patch"]
