"""The lifecycle of one Train, one level-triggered pass at a time.

Each pass reads the Train (from the watch cache) and the world it depends on (policy,
approvals, the Job, the station API), decides the next step from *state*, never from the event
that woke it, performs it idempotently and records it in the Train status. Passes repeat until
the Train is terminal; killing the operator between any two lines of this module loses nothing:

* run objects have deterministic names, so a repeated create answers 409 and is adopted;
* the token lives only in the run's Secret, so a repeated registration uses the same token;
* the Job's uid is written to status right after the Job exists and before anything depends on
  it; a recorded Job that is gone ends ``Failed/RunLost`` — a second run is never started;
* status writes carry the resourceVersion that was read, so a stale view is refused (409) and
  the pass simply runs again on fresh data;
* the Job TTL is applied only after the outcome is recorded; deletion revokes the token before
  deleting the Job (background propagation, so its pods stop).

Steps: admit → approve → (suspend?) → start the run → follow it → mirror the release → finish.
See docs/lifecycle.md for the state table.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from pht_contract import constants, wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.evaluation import Decision, evaluate, has_capacity, required_approvers
from pht_contract.hashing import canonical_json, sha256_hex, spec_hash, token_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import ReleaseState, TrainSpec
from pht_operator import approvals as approval_rules
from pht_operator import jobstates, kubeapi, runs
from pht_operator.kubeapi import ApiError, KubeApi
from pht_operator.metrics import OperatorMetrics
from pht_operator.names import RunNames, run_names
from pht_operator.settings import OperatorSettings
from pht_operator.stationapi import StationApi, StationApiError
from pht_operator.statuses import (
    StatusDraft,
    condition,
    is_terminal,
    is_true,
    now_iso,
    parse_time,
    reason_of,
)
from pht_operator.stores import Store

Obj = dict[str, Any]
logger = logging.getLogger("pht_operator.reconciler")

ACTOR = "pht-station-operator"


class EventSink(Protocol):
    """Posts Kubernetes Events about a Train (Kopf's poster in production)."""

    def __call__(self, body: Obj, kind: str, reason: str, message: str) -> None: ...


class TransientError(Exception):
    """The pass could not finish; it is retried (and counted in reconcile errors)."""


@dataclass
class Context:
    settings: OperatorSettings
    kube: KubeApi
    station: StationApi
    metrics: OperatorMetrics
    store: Store
    events: EventSink


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _deadline(seconds: int) -> str:
    return (_utcnow() + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TrainPass:
    """One reconcile pass over one Train."""

    def __init__(self, ctx: Context, body: Obj) -> None:
        self.ctx = ctx
        self.body = body
        meta = body["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.draft = StatusDraft(body.get("status"), meta.get("generation"))
        self.names: RunNames = run_names(self.uid, self.name)
        self.spec: TrainSpec | None = None
        self.policy: StationPolicySpec | None = None
        self.decision: Decision | None = None

    # -- helpers ----------------------------------------------------------------------------------

    @property
    def status(self) -> Obj:
        return self.draft.status

    def event(self, kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event for humans, and the same line in the operator's log."""
        log = logger.warning if kind == "Warning" else logger.info
        log("Train %s/%s: %s: %s", self.namespace, self.name, reason, message)
        self.ctx.events(self.body, kind, reason, message)

    async def provenance(self, kind: wire.ProvenanceKind, step: str, **details: Any) -> None:
        await self.ctx.station.record(
            wire.ProvenanceEvent(
                event_id=f"{self.uid}:{kind.value}:{step}",
                kind=kind,
                train_uid=self.uid,
                namespace=self.namespace,
                name=self.name,
                actor=ACTOR,
                at=now_iso(),
                details=details,
            )
        )

    async def flush(self) -> None:
        """Write the draft to ``/status`` if it changed, guarded by the version we read."""
        if not self.draft.changed:
            return
        patch = self.draft.patch(self.body["metadata"].get("resourceVersion"))
        try:
            updated = await self.ctx.kube.patch(
                kubeapi.TRAINS, self.namespace, self.name, patch, sub="status"
            )
        except ApiError as exc:
            await self.refresh_on_conflict(exc)
            raise TransientError(f"status write refused: {exc.code} {exc.reason}") from exc
        self.body = updated
        self.ctx.store.put_train(updated)
        self.draft = StatusDraft(updated.get("status"), updated["metadata"].get("generation"))

    async def refresh_on_conflict(self, exc: ApiError) -> None:
        """Our view was stale: fetch the Train so the retry decides on fresh data rather than
        waiting for the watch (which may be the thing that is behind)."""
        if not exc.conflict:
            return
        with contextlib.suppress(ApiError):
            fresh = await self.ctx.kube.get_or_none(kubeapi.TRAINS, self.namespace, self.name)
            if fresh is not None:
                self.ctx.store.put_train(fresh)

    def mark_summary(self, summary: Summary) -> None:
        self.draft.set_summary(summary)

    # -- the pass -------------------------------------------------------------------------------

    async def run(self) -> None:
        meta = self.body["metadata"]
        if meta.get("deletionTimestamp"):
            await self.on_deletion()
            return
        if is_terminal(self.status):
            await self.after_terminal()
            return
        await self.ensure_finalizer()
        if not await self.parse_spec():
            await self.flush()
            return
        if not is_true(self.status, ConditionType.ADMITTED) and not await self.admit():
            await self.flush()
            return
        if not is_true(self.status, ConditionType.APPROVED) and not await self.approve():
            await self.flush()
            return
        run = self.status.get("run") or {}
        if not run.get("jobUid"):
            if self.spec is not None and self.spec.suspend:
                self.draft.set_condition(
                    ConditionType.RUNNING,
                    "False",
                    Reason.SUSPENDED,
                    "suspended by the requester before the run started; set spec.suspend to "
                    "false to start it",
                )
                if self.status.get("summary") != Summary.SUSPENDED:
                    self.event("Normal", "Suspended", "the Train is suspended; no run is started")
                self.mark_summary(Summary.SUSPENDED)
                self.ctx.store.release_slot(self.namespace, self.uid)
                await self.flush()
                return
            await self.start_run()
            return
        if self.spec is not None and self.spec.suspend:
            await self.cancel(
                Reason.CANCELLED,
                "suspended while running: the run was stopped and its token revoked",
            )
            return
        if reason_of(self.status, ConditionType.RUNNING) == Reason.RUN_COMPLETED:
            await self.mirror_release()
        else:
            await self.follow()
        await self.flush()

    # -- finalizer ------------------------------------------------------------------------------

    async def ensure_finalizer(self) -> None:
        finalizers = list(self.body["metadata"].get("finalizers") or [])
        if constants.FINALIZER in finalizers:
            return
        patch = {
            "metadata": {
                "finalizers": [*finalizers, constants.FINALIZER],
                "resourceVersion": self.body["metadata"]["resourceVersion"],
            }
        }
        try:
            updated = await self.ctx.kube.patch(kubeapi.TRAINS, self.namespace, self.name, patch)
        except ApiError as exc:
            await self.refresh_on_conflict(exc)
            raise TransientError(f"finalizer write refused: {exc.code}") from exc
        self.body = updated
        self.ctx.store.put_train(updated)
        self.draft = StatusDraft(updated.get("status"), updated["metadata"].get("generation"))

    # -- admission ------------------------------------------------------------------------------

    async def parse_spec(self) -> bool:
        try:
            self.spec = TrainSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            await self.reject(Reason.INVALID_PARAMETERS, f"spec.{where}: {first.get('msg')}")
            return False
        return True

    async def load_policy(self) -> StationPolicySpec | None:
        body = self.ctx.store.policies.get(self.namespace)
        if body is None:
            # The watch cache may not have it yet (operator start): ask before refusing.
            body = await self.ctx.kube.get_or_none(
                kubeapi.POLICIES, self.namespace, constants.STATION_POLICY_NAME
            )
            if body is not None:
                self.ctx.store.policies[self.namespace] = body
        if body is None:
            return None
        try:
            return StationPolicySpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return None

    async def reject(self, reason: Reason | str, message: str) -> None:
        self.draft.set_condition(ConditionType.ADMITTED, "False", reason, message)
        await self.finish(Summary.REJECTED, reason, message)
        self.ctx.metrics.admission("Rejected", str(reason))

    async def admit(self) -> bool:
        assert self.spec is not None
        policy = await self.load_policy()
        if policy is None:
            await self.reject(
                Reason.NO_STATION_POLICY,
                f"namespace {self.namespace} has no valid StationPolicy named "
                f"{constants.STATION_POLICY_NAME!r}; this station does not run Trains here",
            )
            return False
        self.policy = policy
        decision = evaluate(self.spec, policy)
        self.decision = decision
        if not decision.admitted:
            await self.provenance(
                wire.ProvenanceKind.ADMISSION,
                "decision",
                outcome="Rejected",
                reason=decision.reason,
            )
            await self.reject(decision.reason, decision.message)
            return False
        store = self.ctx.store
        active = store.active_count(self.namespace, excluding=self.uid)
        if not has_capacity(active + store.waiting_before(self.body), policy):
            # Stable text (no live count): a waiting Train's status is not rewritten per pass.
            message = (
                f"the station runs at most {policy.limits.max_concurrent_trains} Trains of this "
                "namespace at a time (spec.limits.maxConcurrentTrains); admitted when a slot frees"
            )
            if (
                self.draft.set_condition(
                    ConditionType.ADMITTED, "False", Reason.CONCURRENCY_LIMIT_REACHED, message
                )
                and reason_of(self.draft.original, ConditionType.ADMITTED) is None
            ):
                self.ctx.metrics.admission("Waiting", Reason.CONCURRENCY_LIMIT_REACHED)
                self.event("Normal", Reason.CONCURRENCY_LIMIT_REACHED, message)
            self.mark_summary(Summary.WAITING)
            return False
        store.reserved[self.namespace].add(self.uid)
        await self.provenance(wire.ProvenanceKind.ADMISSION, "decision", outcome="Admitted")
        self.draft.set_condition(ConditionType.ADMITTED, "True", Reason.ADMITTED, decision.message)
        self.draft.set("specHash", spec_hash(self.spec))
        self.mark_summary(Summary.PENDING)
        marks = store.marks.get(self.uid)
        if marks is not None:
            marks.admitted = time.monotonic()
            self.ctx.metrics.admission_latency.observe(marks.admitted - marks.first_seen)
        self.ctx.metrics.admission("Admitted", Reason.ADMITTED)
        self.event("Normal", Reason.ADMITTED, "admitted by the station policy")
        return True

    async def ensure_policy(self) -> StationPolicySpec:
        if self.policy is None:
            self.policy = await self.load_policy()
        if self.policy is None:
            raise TransientError("the StationPolicy disappeared after admission")
        assert self.spec is not None
        if self.decision is None:
            self.decision = evaluate(self.spec, self.policy)
        return self.policy

    # -- approval -------------------------------------------------------------------------------

    async def approve(self) -> bool:
        assert self.spec is not None
        policy = await self.ensure_policy()
        assert self.decision is not None
        required = required_approvers(policy)
        if required == 0:
            self.draft.set_condition(
                ConditionType.APPROVED,
                "True",
                Reason.APPROVAL_NOT_REQUIRED,
                "the station policy requires no approval",
            )
            return True
        current_hash = spec_hash(self.spec)
        verdict = approval_rules.decide(
            train_name=self.name,
            train_uid=self.uid,
            spec=self.spec,
            spec_hash=current_hash,
            query_hashes=self.decision.approved_query_hashes,
            required=required,
            requester=approval_rules.requester_identities(
                self.spec, self.body["metadata"].get("annotations") or {}
            ),
            approvals=list(self.ctx.store.approvals.get(self.namespace, {}).values()),
        )
        if verdict.rejected:
            await self.provenance(wire.ProvenanceKind.APPROVAL, "decision", outcome="Rejected")
            self.draft.set_condition(
                ConditionType.APPROVED, "False", Reason.REJECTED, verdict.message
            )
            await self.finish(Summary.REJECTED, Reason.REJECTED, verdict.message)
            self.ctx.metrics.admission("Rejected", Reason.REJECTED)
            return False
        if not verdict.approved:
            if (
                self.draft.set_condition(
                    ConditionType.APPROVED, "False", Reason.AWAITING_APPROVAL, verdict.message
                )
                and reason_of(self.draft.original, ConditionType.APPROVED) is None
            ):
                self.event("Normal", Reason.AWAITING_APPROVAL, verdict.message)
            self.mark_summary(Summary.AWAITING_APPROVAL)
            return False
        if verdict.standing is not None:
            await self.consume_standing(verdict.standing, policy)
        await self.provenance(
            wire.ProvenanceKind.APPROVAL,
            "decision",
            outcome=str(verdict.reason),
            approvers=", ".join(verdict.approvers) or None,
            standing=verdict.standing,
            specHash=current_hash,
        )
        self.draft.set_condition(ConditionType.APPROVED, "True", verdict.reason, verdict.message)
        if verdict.approvers:
            self.draft.set("approvedBy", list(verdict.approvers))
        admitted = condition(self.status, ConditionType.ADMITTED)
        since = parse_time(admitted.get("lastTransitionTime")) if admitted else None
        if since is not None:
            self.ctx.metrics.approval_wait.observe(max(0.0, (_utcnow() - since).total_seconds()))
        marks = self.ctx.store.marks.get(self.uid)
        if marks is not None:
            marks.approved = time.monotonic()
        self.event("Normal", str(verdict.reason), verdict.message)
        return True

    async def consume_standing(self, name: str, policy: StationPolicySpec) -> None:
        """Count this run against a standing approval, once (idempotent by Train uid)."""
        approval = await self.ctx.kube.get(kubeapi.APPROVALS, self.namespace, name)
        status = approval.get("status") or {}
        consumed = list(status.get("consumedBy") or [])
        if self.uid in consumed:
            return
        max_runs = int(approval["spec"]["standing"]["maxRuns"])
        used = int(status.get("runsUsed", 0))
        if used >= max_runs:
            raise TransientError(f"standing approval {name} has no runs left")
        patch = {
            "metadata": {"resourceVersion": approval["metadata"]["resourceVersion"]},
            "status": {"runsUsed": used + 1, "consumedBy": [*consumed, self.uid][-1000:]},
        }
        try:
            updated = await self.ctx.kube.patch(
                kubeapi.APPROVALS, self.namespace, name, patch, sub="status"
            )
        except ApiError as exc:
            raise TransientError(f"standing approval {name} changed meanwhile") from exc
        self.ctx.store.approvals[self.namespace][name] = updated

    # -- the run ----------------------------------------------------------------------------------

    def run_request(self, policy: StationPolicySpec) -> runs.RunRequest:
        assert self.spec is not None and self.decision is not None
        return runs.RunRequest(
            uid=self.uid,
            namespace=self.namespace,
            name=self.name,
            spec=self.spec,
            spec_hash=spec_hash(self.spec),
            policy=policy,
            timeout_seconds=self.decision.timeout_seconds,
            names=self.names,
        )

    async def ensure_object(self, res: kubeapi.Resource, obj: Obj) -> Obj:
        """Create, or adopt the existing object if it is this Train's (by uid label)."""
        namespace = self.ctx.settings.run_namespace
        try:
            return await self.ctx.kube.create(res, namespace, obj)
        except ApiError as exc:
            if not exc.conflict:
                raise TransientError(
                    f"cannot create {res.plural}: {exc.code} {exc.reason}"
                ) from exc
        existing = await self.ctx.kube.get(res, namespace, obj["metadata"]["name"])
        owner = (existing["metadata"].get("labels") or {}).get(constants.LABEL_TRAIN_UID)
        if owner != self.uid:
            raise TransientError(f"{res.plural}/{obj['metadata']['name']} belongs to another Train")
        return existing

    async def ensure_token(self, request: runs.RunRequest) -> str:
        """The run's token: minted once, kept only in the run's Secret."""
        token = secrets.token_urlsafe(32)
        secret = await self.ensure_object(
            kubeapi.SECRETS, runs.build_secret(request, token, self.ctx.settings)
        )
        stored = (secret.get("data") or {}).get(constants.TOKEN_SECRET_KEY)
        if stored is None:
            raise TransientError("the run's Secret holds no token")
        return base64.b64decode(stored).decode()

    async def start_run(self) -> None:
        assert self.spec is not None
        policy = await self.ensure_policy()
        assert self.decision is not None
        request = self.run_request(policy)
        settings = self.ctx.settings
        token = await self.ensure_token(request)
        registration = wire.TrainRegistration(
            uid=self.uid,
            namespace=self.namespace,
            name=self.name,
            spec_hash=request.spec_hash,
            image=self.spec.image,
            token_hash=token_hash(token),
            approved_query_hashes=list(self.decision.approved_query_hashes),
            allowed_graphs=list(self.spec.graphs or policy.data_access.allowed_graphs),
            policy=policy,
            policy_hash=sha256_hex(canonical_json(policy.wire())),
            requester_name=self.spec.requester.name,
            requester_organisation=self.spec.requester.organisation,
            expires_at=_deadline(request.timeout_seconds + policy.timeouts.pending_seconds),
        )
        try:
            await self.ctx.station.register(registration)
        except StationApiError as exc:
            # Not terminal: say why nothing runs yet, then retry with backoff.
            message = f"the station API did not register the run yet (will retry): {exc}"
            if self.draft.set_condition(
                ConditionType.RUNNING, "False", Reason.REGISTRATION_FAILED, message
            ):
                self.event("Warning", Reason.REGISTRATION_FAILED, message)
            self.mark_summary(Summary.PENDING)
            await self.flush()
            raise TransientError(str(exc)) from exc
        await self.provenance(
            wire.ProvenanceKind.REGISTRATION, "registered", specHash=request.spec_hash
        )
        await self.ensure_object(
            kubeapi.NETWORK_POLICIES, runs.build_network_policy(request, settings)
        )
        job = await self.ensure_object(kubeapi.JOBS, runs.build_job(request, settings))
        job_uid = job["metadata"]["uid"]
        await self.provenance(wire.ProvenanceKind.RUN, "created", jobUid=job_uid)
        self.draft.set(
            "run",
            {
                "namespace": settings.run_namespace,
                "jobName": self.names.job,
                "jobUid": job_uid,
                "secretName": self.names.secret,
            },
        )
        self.draft.set("attempts", 0)
        self.draft.set_condition(
            ConditionType.RUNNING, "False", Reason.JOB_CREATED, "the run's Job was created"
        )
        self.mark_summary(Summary.QUEUED)
        await self.flush()  # the Job's uid is recorded before anything depends on it
        marks = self.ctx.store.marks.get(self.uid)
        if marks is not None:
            start = marks.approved or marks.admitted
            if start is not None:
                self.ctx.metrics.run_start_latency.observe(time.monotonic() - start)
        self.event("Normal", Reason.JOB_CREATED, f"run created in {settings.run_namespace}")

    async def follow(self) -> None:
        policy = await self.ensure_policy()
        run = self.status["run"]
        namespace = run["namespace"]
        job = self.ctx.store.jobs.get(self.uid)
        if job is None or job["metadata"]["uid"] != run["jobUid"]:
            # Not (yet) in the watch cache: ask the API before declaring the run lost.
            job = await self.ctx.kube.get_or_none(kubeapi.JOBS, namespace, run["jobName"])
        if job is None or job["metadata"]["uid"] != run["jobUid"]:
            await self.fail(
                Reason.RUN_LOST,
                f"the run's Job {run['jobName']} disappeared before its outcome was recorded; "
                "the operator never starts a second run",
                delete_job=False,
            )
            return
        pods = [
            pod
            for pod in self.ctx.store.pods.get(self.uid, {}).values()
            if any(
                ref.get("uid") == run["jobUid"]
                for ref in pod["metadata"].get("ownerReferences") or []
            )
        ]
        phase = jobstates.classify(job, pods, policy.timeouts.pending_seconds, _utcnow())
        self.draft.set("attempts", phase.attempts)
        if phase.started_at is not None and not self.status.get("startTime"):
            self.draft.set("startTime", phase.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if phase.phase == jobstates.Phase.RUNNING:
            if self.draft.set_condition(
                ConditionType.RUNNING, "True", Reason.RUNNING, phase.message
            ):
                created = parse_time(job["metadata"].get("creationTimestamp"))
                if created is not None:
                    self.ctx.metrics.queue_wait.observe(
                        max(0.0, (_utcnow() - created).total_seconds())
                    )
                self.event("Normal", Reason.RUNNING, "the run started")
            self.mark_summary(Summary.RUNNING)
            await self.mirror_progress()
        elif phase.phase in (jobstates.Phase.QUEUED, jobstates.Phase.PENDING):
            if self.draft.set_condition(
                ConditionType.RUNNING, "False", phase.reason, phase.message
            ) and (
                phase.reason != Reason.PENDING
                or reason_of(self.draft.original, ConditionType.RUNNING) != Reason.PENDING
            ):
                self.event("Normal", phase.reason, phase.message)
            self.mark_summary(Summary.QUEUED)
        elif phase.phase == jobstates.Phase.SUCCEEDED:
            await self.ctx.station.complete(
                self.uid, wire.RunCompletion(job_succeeded=True, reason=Reason.RUN_COMPLETED)
            )
            self.record_run_end(phase)
            self.draft.set_condition(
                ConditionType.RUNNING, "False", Reason.RUN_COMPLETED, "the run finished"
            )
            self.event("Normal", Reason.RUN_COMPLETED, "the run finished; awaiting the result")
            await self.mirror_release()
        else:
            await self.ctx.station.complete(
                self.uid, wire.RunCompletion(job_succeeded=False, reason=phase.reason)
            )
            self.record_run_end(phase)
            stuck = phase.reason in (
                Reason.IMAGE_PULL_FAILED,
                Reason.CREATE_CONTAINER_CONFIG_ERROR,
                Reason.UNSCHEDULABLE,
            )
            await self.fail(phase.reason, phase.message, delete_job=stuck)

    def record_run_end(self, phase: jobstates.RunPhase) -> None:
        end = phase.finished_at or _utcnow()
        start = phase.started_at or parse_time(self.status.get("startTime"))
        if start is None:
            return
        seconds = max(0.0, (end - start).total_seconds())
        self.draft.set("durationSeconds", int(seconds))
        self.ctx.metrics.run_duration.observe(seconds)
        assert self.spec is not None
        if self.spec.resources.gpu and self.policy is not None:
            self.ctx.metrics.gpu(
                self.spec.requester.organisation,
                self.policy.organisations,
                seconds * self.spec.resources.gpu,
            )

    async def mirror_progress(self) -> wire.TrainState:
        state = await self.ctx.station.state(self.uid)
        if state.progress is not None:
            self.draft.set("progress", state.progress.wire())
        return state

    async def mirror_release(self) -> None:
        state = await self.mirror_progress()
        release = state.release
        if release == ReleaseState.RELEASED:
            self.draft.set_condition(
                ConditionType.RESULT_RELEASED,
                "True",
                Reason.RESULT_RELEASED,
                "the result was released",
            )
            if state.result is not None:
                self.draft.set("result", state.result.wire())
            await self.succeed()
        elif release == ReleaseState.BLOCKED:
            rule = state.rule or "unspecified"
            message = f"the disclosure gate blocked the result (rule {rule})"
            self.draft.set_condition(
                ConditionType.RESULT_RELEASED, "False", Reason.DISCLOSURE_BLOCKED, message
            )
            await self.fail(Reason.DISCLOSURE_BLOCKED, message, delete_job=False)
        elif release == ReleaseState.NO_OUTPUT or (
            release == ReleaseState.PENDING and state.uploads == 0
        ):
            message = "the run finished without uploading a result"
            self.draft.set_condition(
                ConditionType.RESULT_RELEASED, "False", Reason.NO_OUTPUT, message
            )
            await self.fail(Reason.NO_OUTPUT, message, delete_job=False)
        elif release == ReleaseState.HELD:
            rule = f" (rule {state.rule})" if state.rule else ""
            message = f"the result is held for the data steward's review{rule}"
            if self.draft.set_condition(
                ConditionType.RESULT_RELEASED, "False", Reason.AWAITING_RELEASE, message
            ):
                self.event("Normal", Reason.AWAITING_RELEASE, message)
            self.mark_summary(Summary.AWAITING_RELEASE)
            self.ctx.store.release_slot(self.namespace, self.uid)
        else:
            self.draft.set_condition(
                ConditionType.RESULT_RELEASED,
                "False",
                Reason.AWAITING_RESULT,
                "the station API is processing the uploaded result",
            )
            self.mark_summary(Summary.AWAITING_RELEASE)

    # -- endings --------------------------------------------------------------------------------

    async def succeed(self) -> None:
        self.draft.set_condition(
            ConditionType.SUCCEEDED, "True", Reason.RESULT_RELEASED, "the result was released"
        )
        await self.finish(Summary.SUCCEEDED, Reason.RESULT_RELEASED, "the result was released")

    async def fail(self, reason: Reason, message: str, *, delete_job: bool) -> None:
        if reason_of(self.status, ConditionType.RUNNING) != Reason.RUN_COMPLETED:
            self.draft.set_condition(ConditionType.RUNNING, "False", reason, message)
        self.draft.set_condition(ConditionType.FAILED, "True", reason, message)
        await self.finish(Summary.FAILED, reason, message)
        if delete_job:
            await self.delete_run_objects(job=True)

    async def finish(self, summary: Summary, reason: Reason | str, message: str) -> None:
        """Record the terminal condition, then clean up (token first, TTL last)."""
        self.mark_summary(summary)
        self.draft.set("completionTime", now_iso())
        await self.flush()
        created = parse_time(self.body["metadata"].get("creationTimestamp"))
        if created is not None:
            self.ctx.metrics.turnaround.observe(max(0.0, (_utcnow() - created).total_seconds()))
        outcome = "Succeeded" if summary == Summary.SUCCEEDED else summary.value
        self.ctx.metrics.finish(outcome, str(reason))
        self.event("Normal" if summary == Summary.SUCCEEDED else "Warning", str(reason), message)
        self.ctx.store.release_slot(self.namespace, self.uid)
        await self.after_terminal()

    async def after_terminal(self) -> None:
        """Revoke the token, remove the run's Secret and NetworkPolicy, set the Job TTL. Once."""
        store = self.ctx.store
        if self.uid in store.cleaned:
            return
        run = self.status.get("run") or {}
        if run:
            await self.ctx.station.deregister(self.uid)
            await self.provenance(wire.ProvenanceKind.DEREGISTRATION, "terminal")
            await self.delete_run_objects(job=False)
            job = await self.ctx.kube.get_or_none(kubeapi.JOBS, run["namespace"], run["jobName"])
            if job is not None and job["metadata"]["uid"] == run.get("jobUid"):
                ttl = self.ctx.settings.job_ttl_seconds
                if job.get("spec", {}).get("ttlSecondsAfterFinished") != ttl:
                    await self.ctx.kube.patch(
                        kubeapi.JOBS,
                        run["namespace"],
                        run["jobName"],
                        {"spec": {"ttlSecondsAfterFinished": ttl}},
                    )
        store.cleaned.add(self.uid)
        store.release_slot(self.namespace, self.uid)

    async def delete_run_objects(self, *, job: bool) -> None:
        namespace = self.ctx.settings.run_namespace
        kube = self.ctx.kube
        if job:
            await kube.delete(kubeapi.JOBS, namespace, self.names.job, "Background")
        await kube.delete(kubeapi.SECRETS, namespace, self.names.secret)
        await kube.delete(kubeapi.NETWORK_POLICIES, namespace, self.names.network_policy)

    async def cancel(self, reason: Reason, message: str) -> None:
        """Stop a run: revoke the token first, then delete the Job so its pods stop."""
        await self.ctx.station.deregister(self.uid)
        await self.provenance(wire.ProvenanceKind.DEREGISTRATION, "cancelled", reason=reason)
        await self.delete_run_objects(job=True)
        self.draft.set_condition(ConditionType.RUNNING, "False", reason, message)
        self.draft.set_condition(ConditionType.FAILED, "True", reason, message)
        await self.finish(Summary.FAILED, reason, message)

    async def on_deletion(self) -> None:
        finalizers = list(self.body["metadata"].get("finalizers") or [])
        if constants.FINALIZER not in finalizers:
            return
        if self.status.get("run"):
            # Token first (deregistration is idempotent), then the Job with background
            # propagation so its pods stop, then the Secret and NetworkPolicy.
            if self.uid not in self.ctx.store.cleaned:
                await self.ctx.station.deregister(self.uid)
                await self.provenance(wire.ProvenanceKind.DEREGISTRATION, "deleted")
            await self.delete_run_objects(job=True)
            if not is_terminal(self.status):
                self.event("Normal", Reason.CANCELLED, "the Train was deleted; its run was stopped")
        remaining = [f for f in finalizers if f != constants.FINALIZER]
        patch = {
            "metadata": {
                "finalizers": remaining or None,
                "resourceVersion": self.body["metadata"]["resourceVersion"],
            }
        }
        try:
            await self.ctx.kube.patch(kubeapi.TRAINS, self.namespace, self.name, patch)
        except ApiError as exc:
            if not exc.not_found:
                raise TransientError(f"finalizer removal refused: {exc.code}") from exc
        self.ctx.store.release_slot(self.namespace, self.uid)


async def reconcile(ctx: Context, uid: str) -> None:
    """One pass over the Train with this uid (a no-op if it is gone or not ours)."""
    body = ctx.store.trains.get(uid)
    if body is None or body["metadata"].get("namespace") not in ctx.settings.station_namespaces:
        return
    try:
        await TrainPass(ctx, body).run()
    except ApiError as exc:
        raise TransientError(f"Kubernetes API: {exc.code} {exc.reason}") from exc
    except StationApiError as exc:
        raise TransientError(f"station API: {exc}") from exc
