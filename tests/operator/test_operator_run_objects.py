"""The run's Job and pods in the watch cache: what is kept, and which updates wake a pass.

On a real cluster a run's pod and Job change many times (a node assigned, an IP, probe times,
a readiness count, the TTL the operator sets); only changes to what following the run reads
may cost a pass, and none of those may be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
from typing import Any

import msgspec
import pytest
from aiohttp import web
from lightkube.config.kubeconfig import KubeConfig

from pht_contract import constants
from pht_operator import clusterview, jobstates
from pht_operator import kube as kube_module
from pht_operator.clusterview import ClusterView, RunObjectFields
from pht_operator.jsondata import INTERNED_VALUE_LENGTH, copy_json
from pht_operator.kube import JOBS, PODS, ApiError, KubeClient
from pht_operator.runwatch import watch_objects

RUNS = "pht-runs"
TRAIN_UID = "train-1"
JOB_UID = "job-1"
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def _pod(version: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "run-km-abc",
            "namespace": RUNS,
            "uid": "pod-1",
            "resourceVersion": str(version),
            "creationTimestamp": "2026-11-30T11:59:00Z",
            "labels": {constants.LABEL_TRAIN_UID: TRAIN_UID, "job-name": "run-km"},
            "ownerReferences": [{"kind": "Job", "name": "run-km", "uid": JOB_UID}],
            "managedFields": [{"manager": "kubelet"}],
        },
        "spec": {"containers": [{"name": "train", "image": "x", "env": [{"name": "A"}]}]},
        "status": {"phase": "Pending", **status},
    }


def _job(version: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "run-km",
            "namespace": RUNS,
            "uid": JOB_UID,
            "resourceVersion": str(version),
            "creationTimestamp": "2026-11-30T11:59:00Z",
            "labels": {constants.LABEL_TRAIN_UID: TRAIN_UID},
        },
        "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "train"}]}}},
        "status": status,
    }


def _put(view: ClusterView, kind: str, body: dict[str, Any], event: str = "MODIFIED") -> bool:
    return view.put_run_object(kind, event, body, run_namespace=RUNS) == TRAIN_UID


def test_pod_updates_that_change_nothing_a_pass_reads_wake_no_pass() -> None:
    view = ClusterView()
    assert _put(view, "pods", _pod(1), "ADDED")
    scheduled = _pod(
        2,
        conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t1"}],
    )
    assert _put(view, "pods", scheduled)  # the scheduling condition is read
    placed = copy.deepcopy(scheduled)
    placed["metadata"]["resourceVersion"] = "3"
    placed["spec"]["nodeName"] = "kwok-node-0"
    placed["status"].update(hostIP="10.0.0.1", podIP="10.0.0.2", qosClass="Burstable")
    placed["status"]["conditions"].append(
        {"type": "Initialized", "status": "True", "lastProbeTime": None}
    )
    assert not _put(view, "pods", placed)
    running = copy.deepcopy(placed)
    running["metadata"]["resourceVersion"] = "4"
    running["status"]["phase"] = "Running"
    assert _put(view, "pods", running)
    assert not _put(view, "pods", running)  # the same object again (a relist)
    assert _put(view, "pods", running, "DELETED")
    assert view.pods[TRAIN_UID] == {}


def test_a_waiting_reason_wakes_a_pass_and_is_kept() -> None:
    view = ClusterView()
    _put(view, "pods", _pod(1), "ADDED")
    waiting = {"name": "train", "ready": False, "state": {"waiting": {"reason": "ErrImagePull"}}}
    assert _put(view, "pods", _pod(2, containerStatuses=[waiting]))
    (pod,) = view.pods[TRAIN_UID].values()
    job = _job(1, active=1, startTime="2026-11-30T11:59:01Z")
    phase = jobstates.classify(job, [pod], 300, NOW)
    assert phase.reason == "ImagePullFailed"


def test_the_cached_pod_holds_only_what_following_the_run_reads() -> None:
    view = ClusterView()
    body = _pod(
        1,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available",
                "lastTransitionTime": "2026-11-30T11:59:30Z",
            }
        ],
    )
    _put(view, "pods", body, "ADDED")
    kept = view.pods[TRAIN_UID]["run-km-abc"]
    assert "spec" not in kept and "managedFields" not in kept["metadata"]
    assert kept["metadata"]["ownerReferences"] == [
        {"kind": "Job", "name": "run-km", "uid": JOB_UID}
    ]
    # The pending timeout reads the condition: the cached pod decides as the full one does.
    full = jobstates.classify(_job(1, active=1), [body], 20, NOW)
    cached = jobstates.classify(_job(1, active=1), [kept], 20, NOW)
    assert cached == full and full.reason == "Unschedulable"
    body["metadata"]["labels"]["changed"] = "later"
    assert "changed" not in kept["metadata"]["labels"]  # a copy, not the watch's object


def test_job_updates_wake_a_pass_only_when_the_outcome_inputs_change() -> None:
    view = ClusterView()
    assert _put(view, "jobs", _job(1), "ADDED")
    started = _job(2, active=1, startTime="2026-11-30T11:59:01Z")
    assert _put(view, "jobs", started)
    ready = _job(3, active=1, ready=1, startTime="2026-11-30T11:59:01Z")
    ready["status"]["terminating"] = 0
    assert not _put(view, "jobs", ready)
    older = _job(2, active=0)
    assert not _put(view, "jobs", older)  # an older version never replaces a newer one
    assert view.jobs[TRAIN_UID]["status"]["active"] == 1
    done = _job(
        4,
        succeeded=1,
        startTime="2026-11-30T11:59:01Z",
        completionTime="2026-11-30T11:59:09Z",
        conditions=[
            {"type": "Complete", "status": "True", "lastProbeTime": "t", "lastTransitionTime": "t"}
        ],
    )
    assert _put(view, "jobs", done)
    assert jobstates.classify(view.jobs[TRAIN_UID], [], 300, NOW).phase == "Succeeded"
    assert _put(view, "jobs", done, "DELETED")
    assert TRAIN_UID not in view.jobs


def test_objects_outside_the_run_namespace_or_without_a_train_are_ignored() -> None:
    view = ClusterView()
    elsewhere = _pod(1)
    elsewhere["metadata"]["namespace"] = "pht-requests"
    assert view.put_run_object("pods", "ADDED", elsewhere, run_namespace=RUNS) is None
    unlabelled = _job(1)
    unlabelled["metadata"]["labels"] = {}
    assert view.put_run_object("jobs", "ADDED", unlabelled, run_namespace=RUNS) is None
    assert view.pods.get(TRAIN_UID, {}) == {} and view.jobs == {}


def test_copy_json_copies_containers_and_shares_scalars() -> None:
    original = {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True}
    copied = copy_json(original)
    assert copied == original
    copied["a"][1]["b"] = "changed"
    copied["a"].append(2)
    assert original == {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True}
    odd = {"t": (1, [2])}
    assert copy_json(odd) == odd and copy_json(odd)["t"][1] is not odd["t"][1]


def test_copies_of_separate_documents_share_names_and_short_values() -> None:
    """A thousand cached Trains hold one copy of each field name and repeated short value."""
    long_text = "SELECT ?s WHERE { ?s ?p ?o }\n" * 8
    text = json.dumps(
        {"status": {"conditions": [{"type": "Admitted", "status": "True"}]}, "q": long_text}
    )
    first, second = copy_json(json.loads(text)), copy_json(json.loads(text))
    assert first == second == json.loads(text)
    first_key, second_key = next(iter(first["status"])), next(iter(second["status"]))
    assert first_key is second_key
    first_condition = first["status"]["conditions"][0]
    second_condition = second["status"]["conditions"][0]
    assert first_condition["status"] is second_condition["status"]
    assert first_condition["type"] is second_condition["type"]
    assert len(long_text) > INTERNED_VALUE_LENGTH
    assert first["q"] is not second["q"]  # long values are not interned, only shared


def test_every_watch_handler_runs_on_the_event_loop() -> None:
    """Coroutines: Kopf runs them on the loop that owns the cache and the work queue (a plain
    function would run in Kopf's thread pool)."""
    import kopf

    from pht_operator.handlers import build_registry

    class App:  # build_registry only closes over the app
        pass

    registry = build_registry(App())  # type: ignore[arg-type]
    handlers = [
        handler
        for resource_registry in (registry._indexing, registry._watching)
        for handler in resource_registry.get_all_handlers()
    ]
    assert len(handlers) == 4
    assert all(asyncio.iscoroutinefunction(handler.fn) for handler in handlers)
    assert isinstance(registry, kopf.OperatorRegistry)


def test_no_handler_compares_a_train_with_its_last_handled_version() -> None:
    """Kopf's diff-base (built for every event) is skipped: that holds only while no change
    handler or daemon reads it."""
    from pht_operator.handlers import NoDiffBaseStorage, build_registry

    class App:
        pass

    registry = build_registry(App())  # type: ignore[arg-type]
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []
    storage = NoDiffBaseStorage(prefix="kopf.test", key="last-handled-configuration")
    body = {"metadata": {"name": "t", "labels": {"a": "b"}}, "spec": {"queries": ["q"]}}
    assert storage.build(body=body) == {}  # type: ignore[arg-type]
    assert storage.fetch(body=body) is None  # type: ignore[arg-type]


def test_a_failed_container_is_kept_with_only_the_reason_a_researcher_may_see() -> None:
    view = ClusterView()
    _put(view, "pods", _pod(1), "ADDED")
    ended = {
        "exitCode": 3,
        "reason": "Error",
        "finishedAt": "2026-11-30T11:59:40Z",
        "containerID": "containerd://abc",
        "message": "InvalidParameters",
    }
    failed = _pod(2, containerStatuses=[{"name": "train", "state": {"terminated": ended}}])
    failed["status"]["phase"] = "Failed"
    assert _put(view, "pods", failed)
    (pod,) = view.pods[TRAIN_UID].values()
    kept = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert kept == {k: ended[k] for k in ("exitCode", "reason", "finishedAt", "message")}
    job = _job(3, failed=1, conditions=[jobstates_failed()])
    assert jobstates.classify(job, [pod], 300, NOW).message.endswith(
        "; the train reported InvalidParameters"
    )
    # A train's own text never stays in the cache: only the word the mapping shows.
    hostile = copy.deepcopy(failed)
    hostile["metadata"]["resourceVersion"] = "3"
    hostile["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = "x" * 4096
    assert _put(view, "pods", hostile)
    (pod,) = view.pods[TRAIN_UID].values()
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == (
        "UnlistedReason"
    )


def jobstates_failed() -> dict[str, Any]:
    return {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}


class _RelistingKube:
    """Lists a Job, then answers the watch with 410 Gone and lists nothing (it was deleted)."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.listings: list[list[dict[str, Any]]] = [[job], []]
        self.relisted = asyncio.Event()

    async def list(
        self, res: Any, namespace: str, labels: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        items = self.listings.pop(0) if self.listings else []
        if not self.listings:
            self.relisted.set()
        return items, "7"

    async def watch(self, res: Any, namespace: str, **_: Any) -> Any:
        if not self.relisted.is_set():
            raise ApiError(410, "Gone", "too old")
        await asyncio.Event().wait()
        yield  # pragma: no cover - an async generator that never yields


async def test_a_job_deleted_while_no_watch_was_open_is_reported_with_its_train() -> None:
    """The relist's DELETED carries the identity and the Train's label (only that label is
    kept per object between listings), so the cluster view still finds the Train."""
    job = {
        "metadata": {
            "name": "pht-run-1",
            "namespace": "pht-runs",
            "uid": "job-uid",
            "resourceVersion": "5",
            "labels": {constants.LABEL_TRAIN_UID: TRAIN_UID, "other": "x"},
        },
        "spec": {"template": {"spec": {"containers": [{"name": "train"}]}}},
    }
    seen: list[tuple[str, dict[str, Any]]] = []
    task = asyncio.create_task(
        watch_objects(
            _RelistingKube(job),  # type: ignore[arg-type]
            JOBS,
            "pht-runs",
            {},
            lambda kind, body: seen.append((kind, body)),
            watch_timeout=1.0,
            retry_seconds=0.01,
        )
    )
    for _ in range(200):
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [kind for kind, _ in seen] == ["ADDED", "DELETED"]
    deleted = seen[1][1]
    assert deleted == {
        "metadata": {
            "name": "pht-run-1",
            "namespace": "pht-runs",
            "uid": "job-uid",
            "resourceVersion": "5",
            "labels": {constants.LABEL_TRAIN_UID: TRAIN_UID},
        }
    }
    view = ClusterView()
    view.put_run_object("jobs", "ADDED", job, run_namespace="pht-runs")
    assert view.put_run_object("jobs", "DELETED", deleted, run_namespace="pht-runs") == TRAIN_UID
    assert view.jobs == {}


def _watched(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """An object as the run-object watches read it: through :class:`RunObjectFields`."""
    line = json.dumps({"type": kind, "object": obj}).encode()
    event = kube_module._event_decoder(RunObjectFields).decode(line)
    decoded = msgspec.to_builtins(event.object)
    assert isinstance(decoded, dict)
    return decoded


def test_the_watch_reads_every_field_the_cached_views_keep() -> None:
    """Reading only :class:`RunObjectFields` from a watch gives the cache the same Job and Pod
    as reading the whole object would, for objects as the API server sends them."""
    ended = {
        "exitCode": 3,
        "reason": "Error",
        "finishedAt": "2026-11-30T11:59:40Z",
        "message": "InvalidParameters",
    }
    scheduled = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available",
        "lastTransitionTime": "2026-11-30T11:59:01Z",
    }
    pods = [
        _pod(1),
        _pod(2, conditions=[scheduled, {"type": "Ready", "status": "False"}]),
        _pod(3, containerStatuses=[{"name": "t", "state": {"waiting": {"reason": "Pulling"}}}]),
        _pod(4, containerStatuses=[{"name": "t", "state": {"terminated": ended}}]),
    ]
    pods[3]["metadata"]["deletionTimestamp"] = "2026-11-30T12:00:00Z"
    jobs = [
        _job(5),
        _job(6, active=1, startTime="2026-11-30T11:59:02Z", uncountedTerminatedPods={}),
        _job(7, failed=1, conditions=[jobstates_failed()], completionTime="2026-11-30T12:00:00Z"),
    ]
    jobs[2]["spec"].update(activeDeadlineSeconds=300, ttlSecondsAfterFinished=600, suspend=False)
    for kind, objects in (("pods", pods), ("jobs", jobs)):
        for obj in objects:
            whole, read = ClusterView(), ClusterView()
            whole.put_run_object(kind, "ADDED", copy.deepcopy(obj), run_namespace=RUNS)
            read.put_run_object(kind, "ADDED", _watched("ADDED", obj), run_namespace=RUNS)
            assert (read.pods, read.jobs) == (whole.pods, whole.jobs)
            assert read.pods or read.jobs
    # What the views keep is what the watch reads: a field added to one is added to both.
    assert set(clusterview._KEPT_METADATA) <= set(clusterview._RunObjectMeta.__struct_fields__)
    assert set(clusterview._KEPT_SPEC) <= set(clusterview._JobSpecFields.__struct_fields__)
    # The bulk of a pod (its spec, managedFields) is never built.
    read = _watched("MODIFIED", pods[0])
    assert read["spec"] == {}
    assert "managedFields" not in read["metadata"]


async def test_a_watch_read_by_fields_still_ends_with_the_servers_error() -> None:
    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        pod = json.dumps({"type": "ADDED", "object": _pod(8)}).encode()
        await response.write(pod + b"\n")
        error = {"kind": "Status", "status": "Failure", "code": 410, "reason": "Expired"}
        await response.write(json.dumps({"type": "ERROR", "object": error}).encode() + b"\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )
    kube = KubeClient.from_config(config)
    seen: list[dict[str, Any]] = []
    try:
        with pytest.raises(ApiError) as ended:
            async for _, obj in kube.watch(
                PODS,
                RUNS,
                labels=None,
                resource_version="1",
                server_timeout=5,
                fields=RunObjectFields,
            ):
                seen.append(obj)
    finally:
        await kube.aclose()
        await runner.cleanup()
    assert [obj["metadata"]["resourceVersion"] for obj in seen] == ["8"]
    assert seen[0]["spec"] == {}
    assert (ended.value.code, ended.value.reason) == (410, "Expired")
