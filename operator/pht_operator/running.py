"""Run steps of a pass: create the run idempotently, follow it, mirror the release.

Creation order matters: the token Secret (minted once), the registration at the station API
(token hash only), the NetworkPolicy, the Job — and the Job's uid into status before anything
depends on it. Following reads the watch cache; the station API's state is mirrored as-is.
"""

from __future__ import annotations

import base64
import secrets
import time

from pht_contract import constants, wire
from pht_contract.conditions import ConditionType, Reason, Summary
from pht_contract.evaluation import evaluate
from pht_contract.hashing import canonical_json, sha256_hex, spec_hash, token_hash
from pht_contract.policies import StationPolicySpec
from pht_contract.trains import ReleaseState
from pht_operator import jobstates, kubeapi, runs
from pht_operator.kubeapi import ApiError
from pht_operator.passes import Obj, PassBase, TransientError, deadline_in, utcnow
from pht_operator.stationapi import StationApiError, approved_queries
from pht_operator.statuses import (
    parse_time,
    reason_of,
)


class RunSteps(PassBase):
    """Run steps of a pass: create the run idempotently, follow it, mirror the release."""

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

    async def spec_unchanged(self) -> bool:
        """The spec must still be the one admitted and approved: a Train edited in between
        (e.g. while suspended) ends ``Failed`` and never runs, whatever the edit was."""
        assert self.spec is not None
        approved = self.status.get("specHash")
        current = spec_hash(self.spec)
        if approved == current:
            return True
        await self.fail(
            Reason.SPEC_CHANGED_AFTER_APPROVAL,
            f"the spec changed after it was approved (approved spec hash {approved or 'none'}, "
            f"current spec hash {current}); no run was started: submit a new Train instead",
            delete_job=False,
        )
        return False

    async def policy_still_allows(self, policy: StationPolicySpec) -> bool:
        """The run starts only if the current policy still admits the spec: a policy
        tightened after approval (or a resumed Train) never runs what it now refuses."""
        assert self.spec is not None
        decision = evaluate(self.spec, policy)
        self.decision = decision
        if decision.admitted:
            return True
        await self.fail(
            decision.reason,
            f"the station policy refuses the Train as it is now, so no run was started: "
            f"{decision.message}",
            delete_job=False,
        )
        return False

    async def start_run(self) -> None:
        assert self.spec is not None
        if not await self.spec_unchanged():
            return
        policy = await self.ensure_policy()
        if not await self.policy_still_allows(policy):
            return
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
            image_runs_as_built=(
                not self.spec.command and not self.spec.args and self.spec.input_artifact is None
            ),
            token_hash=token_hash(token),
            approved_query_hashes=list(self.decision.approved_query_hashes),
            approved_queries=approved_queries(self.spec, self.decision.approved_query_hashes),
            allowed_graphs=list(self.spec.graphs or policy.data_access.allowed_graphs),
            policy=policy,
            policy_hash=sha256_hex(canonical_json(policy.wire())),
            requester_name=self.spec.requester.name,
            requester_organisation=self.spec.requester.organisation,
            requested_by=(self.body["metadata"].get("annotations") or {}).get(
                constants.ANNOTATION_REQUESTED_BY
            ),
            expires_at=deadline_in(request.timeout_seconds + policy.timeouts.pending_seconds),
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
        phase = jobstates.classify(job, pods, policy.timeouts.pending_seconds, utcnow())
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
                        max(0.0, (utcnow() - created).total_seconds())
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
        end = phase.finished_at or utcnow()
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
