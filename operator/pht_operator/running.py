"""The run: hold it while suspended, create it idempotently, follow it, mirror the release.

Creation order matters: the token Secret (minted once), the registration at the station API
(token hash only), the NetworkPolicy, the Job — and the Job's uid into status before anything
depends on it. Following reads the watch cache; the station API's state is mirrored as-is.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterable

from pht_contract import constants, wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.hashing import spec_hash
from pht_contract.objects import Obj
from pht_contract.policies import StationPolicySpec
from pht_contract.times import parse_utc, researcher_iso, researcher_seconds, utc_now
from pht_contract.trains import ReleaseState
from pht_operator import jobstates, runobjects
from pht_operator.decisions import decide
from pht_operator.endings import cancel, fail, record_run_end, succeed
from pht_operator.kube import JOBS, NETWORK_POLICIES, PODS, SECRETS, ApiError, Resource
from pht_operator.names import label_value
from pht_operator.passes import (
    Next,
    TrainPass,
    TransientError,
    ensure_policy,
    event,
    flush,
)
from pht_operator.stationapi import StationApiError, build_registration
from pht_operator.statuses import reason_of

#: Failures whose pods would otherwise linger (never started): the Job is deleted at once.
_STUCK = (Reason.IMAGE_PULL_FAILED, Reason.CREATE_CONTAINER_CONFIG_ERROR, Reason.UNSCHEDULABLE)


async def hold_while_suspended(train: TrainPass) -> Next:
    """``spec.suspend``: no run starts; a run that exists (recorded or not) is stopped."""
    if train.spec is None or not train.spec.suspend:
        return Next.CONTINUE
    if train.run.get("jobUid"):
        await cancel(
            train,
            Reason.CANCELLED,
            "suspended while running: the run was stopped and its token revoked",
        )
        return Next.DONE
    if await unrecorded_job_exists(train):
        # Created by a pass that died before recording it: stop it like a run.
        await cancel(
            train,
            Reason.CANCELLED,
            "suspended while its run was being created: the run was stopped and its token revoked",
        )
        return Next.DONE
    train.draft.set_condition(
        ConditionType.RUNNING,
        "False",
        Reason.SUSPENDED,
        "suspended by the requester before the run started; set spec.suspend to false to start it",
    )
    if train.status.get("summary") != Summary.SUSPENDED:
        event(
            train,
            "Normal",
            "Suspended",
            "the Train is suspended; no run is started",
            action="Suspend",
        )
    train.draft.set_summary(Summary.SUSPENDED)
    train.ctx.view.release_slot(train.namespace, train.uid)
    return Next.DONE


async def unrecorded_job_exists(train: TrainPass) -> bool:
    """Whether this Train's Job exists although status records none: the watch cache, and
    once per process a GET by its deterministic name (a cold cache is not taken for
    absence; afterwards the Job watch sees any Job of the Train)."""
    view = train.ctx.view
    if train.uid in view.jobs:
        return True
    if train.uid in view.suspend_checked:
        return False
    view.suspend_checked.add(train.uid)
    job = await train.ctx.kube.get_or_none(JOBS, train.ctx.settings.run_namespace, train.names.job)
    if job is None:
        return False
    owner = (job["metadata"].get("labels") or {}).get(constants.LABEL_TRAIN_UID)
    return owner == train.uid


async def start_run(train: TrainPass) -> Next:
    """Create the run (once): token Secret, registration, NetworkPolicy, Job; record the Job."""
    if train.run.get("jobUid"):
        return Next.CONTINUE
    assert train.spec is not None
    if not await _spec_unchanged(train):
        return Next.DONE
    policy = await ensure_policy(train)
    if not await _policy_still_allows(train, policy):
        return Next.DONE
    request = _run_request(train, policy)
    assert train.decision is not None
    settings = train.ctx.settings
    token = await _ensure_token(train, request)
    try:
        await train.ctx.station.register(
            build_registration(
                request,
                train.decision.approved_query_hashes,
                token,
                requested_by=(train.body["metadata"].get("annotations") or {}).get(
                    constants.ANNOTATION_REQUESTED_BY
                ),
                provenance=train.carried,
            )
        )
    except StationApiError as exc:
        # Not terminal: say why nothing runs yet, then retry with backoff.
        message = f"the station API did not register the run yet (will retry): {exc}"
        if train.draft.set_condition(
            ConditionType.RUNNING, "False", Reason.REGISTRATION_FAILED, message
        ):
            event(train, "Warning", Reason.REGISTRATION_FAILED, message, action="Register")
        train.draft.set_summary(Summary.PENDING)
        await flush(train)
        raise TransientError(str(exc)) from exc
    # The station wrote the carried records and its own of the registration.
    train.carried.clear()
    await _ensure_object(
        train, NETWORK_POLICIES, runobjects.build_network_policy(request, settings)
    )
    job = await _ensure_object(train, JOBS, runobjects.build_job(request, settings))
    job_uid = job["metadata"]["uid"]
    # Into the watch cache at once: the pass that the status write below wakes follows the
    # run from the cache instead of reading the Job again before its watch event arrives.
    train.ctx.view.put_run_object("jobs", None, job, run_namespace=settings.run_namespace)
    # The run's record (its Job, when created, how it ended) goes with the completion call.
    train.draft.set(
        "run",
        {
            "namespace": settings.run_namespace,
            "jobName": train.names.job,
            "jobUid": job_uid,
            "secretName": train.names.secret,
        },
    )
    train.draft.set("attempts", 0)
    train.draft.set_condition(
        ConditionType.RUNNING, "False", Reason.JOB_CREATED, "the run's Job was created"
    )
    train.draft.set_summary(Summary.QUEUED)
    await flush(train)  # the Job's uid is recorded before anything depends on it
    marks = train.ctx.view.marks.get(train.uid)
    if marks is not None:
        start = marks.approved or marks.admitted
        if start is not None:
            train.ctx.metrics.run_start_latency.observe(time.monotonic() - start)
    event(
        train,
        "Normal",
        Reason.JOB_CREATED,
        f"run created in {settings.run_namespace}",
        action="CreateRun",
    )
    return Next.DONE


def _run_pods(pods: Iterable[Obj], job_uid: str) -> list[Obj]:
    """The pods of the run's own Job."""
    return [
        pod
        for pod in pods
        if any(ref.get("uid") == job_uid for ref in pod["metadata"].get("ownerReferences") or [])
    ]


async def follow_run(train: TrainPass) -> Next:
    """Mirror the Job (and its pods) into status; once it completed, mirror the release."""
    if reason_of(train.status, ConditionType.RUNNING) == Reason.RUN_COMPLETED:
        await mirror_release(train)
        return Next.DONE
    ctx = train.ctx
    policy = await ensure_policy(train)
    run = train.run
    job = ctx.view.jobs.get(train.uid)
    if job is None or job["metadata"]["uid"] != run["jobUid"]:
        # Not (yet) in the watch cache: ask the API before declaring the run lost.
        job = await ctx.kube.get_or_none(JOBS, run["namespace"], run["jobName"])
    if job is None or job["metadata"]["uid"] != run["jobUid"]:
        await record_run_end(train, Reason.RUN_LOST, run["jobUid"])
        await fail(
            train,
            Reason.RUN_LOST,
            f"the run's Job {run['jobName']} disappeared before its outcome was recorded; "
            "the operator never starts a second run",
            delete_job=False,
        )
        return Next.DONE
    pods = _run_pods(ctx.view.pods.get(train.uid, {}).values(), run["jobUid"])
    phase = jobstates.classify(job, pods, policy.timeouts.pending_seconds, utc_now())
    if jobstates.misses_ended_pod(phase, pods):
        # The Job's outcome came before its pod's last status: read the pods once, so that the
        # reason the train gave is not missed.
        labels = {constants.LABEL_TRAIN_UID: label_value(train.uid)}
        try:
            listed, _ = await ctx.kube.list(PODS, run["namespace"], labels)
        except ApiError:
            listed = []
        if listed:
            pods = _run_pods(listed, run["jobUid"])
            phase = jobstates.classify(job, pods, policy.timeouts.pending_seconds, utc_now())
    # Never lower: a count that drops for a moment (pods deleted, a controller between two
    # updates) would be a status write that tells nothing new.
    train.draft.set("attempts", max(phase.attempts, int(train.status.get("attempts") or 0)))
    if phase.started_at is not None and not train.status.get("startTime"):
        train.draft.set("startTime", researcher_iso(phase.started_at))
    if phase.phase == jobstates.Phase.RUNNING:
        if train.draft.set_condition(ConditionType.RUNNING, "True", Reason.RUNNING, phase.message):
            _run_started(train, job)
        train.draft.set_summary(Summary.RUNNING)
        # Half the re-check interval: the periodic re-checks read it, the pod and Job
        # updates in between do not.
        if ctx.view.progress_due(train.uid, ctx.settings.poll_interval_seconds / 2):
            await _mirror_progress(train)
    elif phase.phase in (jobstates.Phase.QUEUED, jobstates.Phase.PENDING):
        if train.draft.set_condition(
            ConditionType.RUNNING, "False", phase.reason, phase.message
        ) and (
            phase.reason != Reason.PENDING
            or reason_of(train.draft.original, ConditionType.RUNNING) != Reason.PENDING
        ):
            event(train, "Normal", phase.reason, phase.message, action="FollowRun")
        train.draft.set_summary(Summary.QUEUED)
    elif phase.phase == jobstates.Phase.SUCCEEDED:
        if not _seen_running(train):
            _run_started(train, job)  # it started and ended between two passes
        completion = _completion(job, phase, succeeded=True, reason=Reason.RUN_COMPLETED)
        # The reviews and keys the policy holds now: one withdrawn during the run stops counting.
        completion.trust_now = wire.ReviewTrust.of(policy.disclosure)
        decided = await ctx.station.complete(train.uid, completion)
        _record_run_end(train, phase)
        train.draft.set_condition(
            ConditionType.RUNNING, "False", Reason.RUN_COMPLETED, "the run finished"
        )
        event(
            train,
            "Normal",
            Reason.RUN_COMPLETED,
            "the run finished; awaiting the result",
            action="FollowRun",
        )
        await mirror_release(train, decided)
    else:
        if phase.reason == Reason.BACKOFF_LIMIT_EXCEEDED and not _seen_running(train):
            _run_started(train, job)  # its pods ran and failed between two passes
        await ctx.station.complete(
            train.uid, _completion(job, phase, succeeded=False, reason=phase.reason)
        )
        _record_run_end(train, phase)
        await fail(train, phase.reason, phase.message, delete_job=phase.reason in _STUCK)
    return Next.DONE


def _seen_running(train: TrainPass) -> bool:
    """Whether an earlier pass saw the run running (its Running condition became True)."""
    return reason_of(train.draft.original, ConditionType.RUNNING) == Reason.RUNNING


def _run_started(train: TrainPass, job: Obj) -> None:
    """The run's start, once: its queue wait (the Job's creation until a pass saw it run, or
    saw it end when it ran between two passes) and the ``Running`` Event, so that every run
    that ran tells so whatever the timing of the passes."""
    created = parse_utc(job["metadata"].get("creationTimestamp"))
    if created is not None:
        train.ctx.metrics.queue_wait.observe(max(0.0, (utc_now() - created).total_seconds()))
    event(train, "Normal", Reason.RUNNING, "the run started", action="FollowRun")


def _completion(
    job: Obj, phase: jobstates.RunPhase, *, succeeded: bool, reason: Reason
) -> wire.RunCompletion:
    """The run's end as the station API records it: outcome, Job, its creation, attempts."""
    meta = job["metadata"]
    return wire.RunCompletion(
        job_succeeded=succeeded,
        reason=reason,
        job_uid=meta["uid"],
        job_created_at=meta.get("creationTimestamp"),
        attempts=phase.attempts,
    )


async def mirror_release(train: TrainPass, known: wire.TrainState | None = None) -> None:
    """The station API's verdict on the result: released, blocked, none, held, processing
    (``known``: the state the completion call answered, so it is not read again)."""
    state = await _mirror_progress(train, known)
    release = state.release
    draft = train.draft
    if release == ReleaseState.RELEASED:
        draft.set_condition(
            ConditionType.RESULT_RELEASED, "True", Reason.RESULT_RELEASED, "the result was released"
        )
        if state.result is not None:
            draft.set("result", state.result.wire())
        await succeed(train)
    elif release == ReleaseState.BLOCKED:
        message = f"the disclosure gate blocked the result (rule {state.rule or 'unspecified'})"
        draft.set_condition(
            ConditionType.RESULT_RELEASED, "False", Reason.DISCLOSURE_BLOCKED, message
        )
        await fail(train, Reason.DISCLOSURE_BLOCKED, message, delete_job=False)
    elif release == ReleaseState.NO_OUTPUT or (
        release == ReleaseState.PENDING and state.uploads == 0
    ):
        message = "the run finished without uploading a result"
        draft.set_condition(ConditionType.RESULT_RELEASED, "False", Reason.NO_OUTPUT, message)
        await fail(train, Reason.NO_OUTPUT, message, delete_job=False)
    elif release == ReleaseState.HELD:
        rule = f" (rule {state.rule})" if state.rule else ""
        message = f"the result is held for the data steward's review{rule}"
        if draft.set_condition(
            ConditionType.RESULT_RELEASED, "False", Reason.AWAITING_RELEASE, message
        ):
            event(train, "Normal", Reason.AWAITING_RELEASE, message, action="MirrorRelease")
            train.ctx.notify.result_held(train.body)
        draft.set_summary(Summary.AWAITING_RELEASE)
        train.ctx.view.release_slot(train.namespace, train.uid)
    else:
        draft.set_condition(
            ConditionType.RESULT_RELEASED,
            "False",
            Reason.AWAITING_RESULT,
            "the station API is processing the uploaded result",
        )
        draft.set_summary(Summary.AWAITING_RELEASE)


async def _spec_unchanged(train: TrainPass) -> bool:
    """The spec must still be the one admitted and approved: a Train edited in between
    (e.g. while suspended) ends ``Failed`` and never runs, whatever the edit was."""
    assert train.spec is not None
    approved = train.status.get("specHash")
    current = spec_hash(train.spec)
    if approved == current:
        return True
    await fail(
        train,
        Reason.SPEC_CHANGED_AFTER_APPROVAL,
        f"the spec changed after it was approved (approved spec hash {approved or 'none'}, "
        f"current spec hash {current}); no run was started: submit a new Train instead",
        delete_job=False,
    )
    return False


async def _policy_still_allows(train: TrainPass, policy: StationPolicySpec) -> bool:
    """The run starts only if the current policy still admits the spec: a policy
    tightened after approval (or a resumed Train) never runs what it now refuses."""
    assert train.spec is not None
    decision = decide(train.spec, policy)
    train.decision = decision
    if decision.admitted:
        return True
    await fail(
        train,
        decision.reason,
        f"the station policy refuses the Train as it is now, so no run was started: "
        f"{decision.message}",
        delete_job=False,
    )
    return False


def _run_request(train: TrainPass, policy: StationPolicySpec) -> runobjects.RunRequest:
    assert train.spec is not None and train.decision is not None
    return runobjects.RunRequest(
        uid=train.uid,
        namespace=train.namespace,
        name=train.name,
        spec=train.spec,
        spec_hash=spec_hash(train.spec),
        policy=policy,
        timeout_seconds=train.decision.timeout_seconds,
        names=train.names,
    )


async def _ensure_object(train: TrainPass, res: Resource, obj: Obj) -> Obj:
    """Create, or adopt the existing object if it is this Train's (by uid label)."""
    namespace = train.ctx.settings.run_namespace
    name = obj["metadata"]["name"]
    try:
        return await train.ctx.kube.create(res, namespace, obj)
    except ApiError as exc:
        if not exc.conflict:
            raise TransientError(
                f"cannot create {obj['kind']} {name}: {exc.code} {exc.reason}"
            ) from exc
    existing = await train.ctx.kube.get(res, namespace, name)
    owner = (existing["metadata"].get("labels") or {}).get(constants.LABEL_TRAIN_UID)
    if owner != train.uid:
        raise TransientError(f"{obj['kind']} {name} belongs to another Train")
    return existing


async def _ensure_token(train: TrainPass, request: runobjects.RunRequest) -> str:
    """The run's token: minted once, kept only in the run's Secret."""
    token = secrets.token_urlsafe(32)
    secret = await _ensure_object(
        train, SECRETS, runobjects.build_secret(request, token, train.ctx.settings)
    )
    stored = (secret.get("data") or {}).get(constants.TOKEN_SECRET_KEY)
    if stored is None:
        raise TransientError("the run's Secret holds no token")
    return base64.b64decode(stored).decode()


def _record_run_end(train: TrainPass, phase: jobstates.RunPhase) -> None:
    end = phase.finished_at or utc_now()
    start = phase.started_at or parse_utc(train.status.get("startTime"))
    if start is None:
        return
    seconds = max(0.0, (end - start).total_seconds())
    train.draft.set("durationSeconds", researcher_seconds(seconds))
    metrics = train.ctx.metrics
    metrics.run_duration.observe(seconds)
    assert train.spec is not None
    if train.spec.resources.gpu and train.policy is not None:
        metrics.gpu(
            train.spec.requester.organisation,
            train.policy.organisations,
            seconds * train.spec.resources.gpu,
        )


async def _mirror_progress(
    train: TrainPass, known: wire.TrainState | None = None
) -> wire.TrainState:
    state = known if known is not None else await train.ctx.station.state(train.uid)
    if state.progress is not None:
        train.draft.set("progress", state.progress.wire())
    return state
