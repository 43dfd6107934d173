"""Pure decisions: what a Job's state means, and whether approvals suffice."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from operator_harness import DIGEST, REQUESTED_BY, train_body

from pht_contract.trains import TrainSpec
from pht_operator import approvals, jobstates

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)


def pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": "2026-11-28T11:00:00Z"}, "status": status}


def waiting(reason: str) -> dict[str, Any]:
    return pod(phase="Pending", containerStatuses=[{"state": {"waiting": {"reason": reason}}}])


@pytest.mark.parametrize(
    ("pods", "reason"),
    [
        ([waiting("ErrImagePull")], "ImagePullFailed"),
        ([waiting("InvalidImageName")], "ImagePullFailed"),
        ([waiting("CreateContainerConfigError")], "CreateContainerConfigError"),
        ([pod(phase="Running")], "Running"),
        ([], "JobCreated"),
        ([waiting("ContainerCreating")], "Pending"),
    ],
)
def test_pod_states_map_to_reasons(pods: list[dict[str, Any]], reason: str) -> None:
    phase = jobstates.classify({"status": {}}, pods, 900, NOW)
    assert phase.reason == reason


@pytest.mark.parametrize(
    "status",
    [
        {"active": 1},
        {"succeeded": 1},
        {"uncountedTerminatedPods": {"succeeded": ["uid-1"]}},
    ],
)
def test_a_pod_the_job_counts_but_the_watch_misses_keeps_the_run_running(
    status: dict[str, Any],
) -> None:
    """A re-listing pod watch can briefly see no pod of a started Job: not back to the queue."""
    phase = jobstates.classify({"status": status}, [], 900, NOW)
    assert phase.reason == "Running"


def test_an_ended_pod_not_yet_counted_still_counts_as_an_attempt() -> None:
    """A real Job controller moves an ended pod out of ``active`` before it counts it."""
    running = {"active": 1, "startTime": "2026-11-28T11:00:00Z"}
    between = {"active": 0, "uncountedTerminatedPods": {"succeeded": ["pod-uid"]}}
    counted = {"active": 0, "succeeded": 1, "uncountedTerminatedPods": {}}
    attempts = [
        jobstates.classify({"status": status}, [], 900, NOW).attempts
        for status in (running, between, counted)
    ]
    assert attempts == [1, 1, 1]
    retried = {"active": 1, "failed": 1, "uncountedTerminatedPods": {"failed": ["second"]}}
    assert jobstates.classify({"status": retried}, [], 900, NOW).attempts == 3


def test_unschedulable_counts_from_the_condition_transition() -> None:
    def stuck(since: str) -> dict[str, Any]:
        return pod(
            phase="Pending",
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": since,
                }
            ],
        )

    assert jobstates.classify({}, [stuck("2026-11-28T11:59:00Z")], 900, NOW).reason == "Pending"
    late = jobstates.classify({}, [stuck("2026-11-28T11:44:00Z")], 900, NOW)
    assert late.reason == "Unschedulable" and late.final


def test_job_conditions_win_and_suspension_means_queued() -> None:
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}}
    assert jobstates.classify(done, [waiting("ErrImagePull")], 900, NOW).reason == "RunCompleted"
    held = {"spec": {"suspend": True}, "status": {}}
    assert jobstates.classify(held, [], 1, NOW).reason == "Queued"


def decide(objects: list[dict[str, Any]], required: int = 1) -> approvals.ApprovalVerdict:
    spec = TrainSpec.model_validate(train_body("km")["spec"])
    return approvals.decide(
        train_name="km",
        train_uid="u1",
        spec=spec,
        spec_hash="a" * 64,
        query_hashes=("c" * 64,),
        required=required,
        requester=approvals.requester_identities(spec, {}),
        approvals=objects,
        now=NOW,
        creator=REQUESTED_BY,
    )


#: What a standing approval must bind besides digest and queries: the example Train's
#: requester (its requested-by username) and bounds for each of its parameters.
KM_BOUNDS: dict[str, Any] = {
    "requesters": [REQUESTED_BY],
    "parameters": [
        {"name": "timePoints", "type": "array", "items": "integer", "maxItems": 10},
        {"name": "groupBy", "type": "string", "enum": ["overallStage", "sex"]},
    ],
}


def approval(name: str, approver: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "pht.health-ai.nl/v1alpha1",
        "kind": "TrainApproval",
        "metadata": {"name": name},
        "spec": {"approver": approver, **spec},
    }
    body["spec"].setdefault("train", {"name": "km", "specHash": "a" * 64})
    return body


def test_requester_and_duplicates_do_not_count() -> None:
    verdict = decide(
        [
            approval("a", "Dr. A. Researcher"),
            approval("b", "s1@x.nl"),
            approval("c", "S1@x.nl"),
        ],
        required=2,
    )
    assert not verdict.approved
    assert verdict.approvers == ("s1@x.nl",)
    assert decide([approval("b", "s1@x.nl"), approval("d", "s2@x.nl")], 2).approved


def test_expired_or_exhausted_standing_approvals_do_not_cover() -> None:
    def standing(expires: str, used: int, consumed: list[str]) -> dict[str, Any]:
        body = approval(
            "s",
            "s1@x.nl",
            train=None,
            standing={
                "imageDigest": DIGEST,
                "queryHashes": ["c" * 64],
                "maxRuns": 2,
                "expiresAt": expires,
                **KM_BOUNDS,
            },
        )
        del body["spec"]["train"]
        body["status"] = {"runsUsed": used, "consumedBy": consumed}
        return body

    assert decide([standing("2027-01-01T00:00:00Z", 1, [])]).standing == "s"
    assert not decide([standing("2026-01-01T00:00:00Z", 0, [])]).approved
    assert not decide([standing("2027-01-01T00:00:00Z", 2, ["x", "y"])]).approved
    # a Train that already consumed a run stays covered (restarts never count twice)
    assert decide([standing("2027-01-01T00:00:00Z", 2, ["x", "u1"])]).approved


def test_policy_caps_a_standing_approval_runs_and_lifetime() -> None:
    from pht_contract.policies import StandingApprovalLimits

    spec = TrainSpec.model_validate(train_body("km")["spec"])
    body = approval(
        "s",
        "s1@x.nl",
        standing={
            "imageDigest": DIGEST,
            "queryHashes": ["c" * 64],
            "maxRuns": 100,
            "expiresAt": "2030-01-01T00:00:00Z",
            **KM_BOUNDS,
        },
    )
    del body["spec"]["train"]
    created = NOW - datetime.timedelta(days=10)
    body["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")

    def covered(used: int, max_runs: int, max_days: int) -> bool:
        body["status"] = {"runsUsed": used, "consumedBy": []}
        return approvals.decide(
            train_name="km",
            train_uid="u1",
            spec=spec,
            spec_hash="a" * 64,
            query_hashes=("c" * 64,),
            required=1,
            requester=approvals.requester_identities(spec, {}),
            approvals=[body],
            now=NOW,
            creator=REQUESTED_BY,
            standing_limits=StandingApprovalLimits(max_runs=max_runs, max_days=max_days),
        ).approved

    assert covered(used=4, max_runs=5, max_days=30)
    assert not covered(used=5, max_runs=5, max_days=30)  # the policy's maxRuns wins
    assert not covered(used=0, max_runs=50, max_days=7)  # older than the policy's maxDays


# --- the reason a failed train gave ------------------------------------------------------------

FAILED_JOB = {
    "spec": {"backoffLimit": 0},
    "status": {
        "failed": 1,
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
    },
}


def ended(message: str | None, reason: str = "Error", code: int = 3, at: str = "") -> Any:
    terminated: dict[str, Any] = {"exitCode": code, "reason": reason}
    if message is not None:
        terminated["message"] = message
    if at:
        terminated["finishedAt"] = at
    return pod(
        phase="Failed", containerStatuses=[{"name": "train", "state": {"terminated": terminated}}]
    )


def test_a_failed_run_names_the_listed_reason_its_train_gave() -> None:
    phase = jobstates.classify(FAILED_JOB, [ended("InvalidParameters")], 900, NOW)
    assert phase.reason == "BackoffLimitExceeded"
    assert phase.message == (
        "the run failed after 1 attempt(s) (backoffLimit reached); "
        "the train reported InvalidParameters"
    )


@pytest.mark.parametrize(
    "message",
    ["PatientSeventeenIsNinetyThree", "InvalidParameters\nage 93", "x" * 1024 * 1024, "é 93"],
)
def test_any_other_message_shows_the_fixed_word_and_none_of_its_text(message: str) -> None:
    phase = jobstates.classify(FAILED_JOB, [ended(message)], 900, NOW)
    assert phase.message.endswith("; the train reported UnlistedReason")
    assert "93" not in phase.message and "Seventeen" not in phase.message
    assert len(phase.message) < 120


def test_without_a_reason_of_the_train_the_message_is_unchanged() -> None:
    plain = "the run failed after 1 attempt(s) (backoffLimit reached)"
    for pods in ([], [ended(None)], [ended("")], [pod(phase="Failed")]):
        assert jobstates.classify(FAILED_JOB, pods, 900, NOW).message == plain
    # The node's own texts are not the train's: a start error or an out-of-memory kill.
    for node_text in (ended("exec: no such file", "StartError", 128), ended("x", "OOMKilled", 137)):
        assert jobstates.classify(FAILED_JOB, [node_text], 900, NOW).message == plain


def test_the_last_attempt_gives_the_reason_and_a_deadline_gives_none() -> None:
    pods = [
        ended("TooFewPatients", at="2026-11-28T11:58:00Z"),
        ended("ModelDidNotConverge", at="2026-11-28T11:59:00Z"),
    ]
    phase = jobstates.classify(FAILED_JOB, pods, 900, NOW)
    assert phase.message.endswith("the train reported ModelDidNotConverge")
    deadline = {
        "spec": {"activeDeadlineSeconds": 60},
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
        },
    }
    late = jobstates.classify(deadline, [ended("InvalidParameters")], 900, NOW)
    assert late.message == "the run exceeded its deadline of 60s"


def test_a_failed_run_whose_pods_show_no_end_is_worth_reading_again() -> None:
    running = pod(phase="Running", containerStatuses=[{"state": {"running": {}}}])
    phase = jobstates.classify(FAILED_JOB, [running], 900, NOW)
    assert jobstates.misses_ended_pod(phase, [running])
    assert jobstates.misses_ended_pod(phase, [])
    assert not jobstates.misses_ended_pod(phase, [ended(None)])
    succeeded = jobstates.classify(
        {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, [], 900, NOW
    )
    assert not jobstates.misses_ended_pod(succeeded, [])


def test_a_standing_approval_covers_only_the_aggregates_it_names() -> None:
    from pht_contract.approvals import StandingScope
    from pht_contract.hashing import aggregates_hash
    from pht_operator.approvals import scope_mismatch

    body = train_body("km")["spec"]
    counts = [{"name": "stages", "query": "survival", "kind": "Count", "by": ["stage"]}]
    plain = TrainSpec.model_validate(body)
    counting = TrainSpec.model_validate({**body, "aggregates": counts})
    wider = TrainSpec.model_validate(
        {**body, "aggregates": [{**counts[0], "by": ["stage", "sex"]}]}
    )
    scope = StandingScope.model_validate(
        {
            "imageDigest": DIGEST,
            "queryHashes": ["c" * 64],
            "maxRuns": 2,
            "expiresAt": "2027-01-01T00:00:00Z",
            **KM_BOUNDS,
            "aggregatesHash": aggregates_hash(counting),
        }
    )
    assert scope_mismatch(scope, counting, ("c" * 64,), REQUESTED_BY) is None
    # A coordinator cannot widen what the station computes and releases under the approval…
    assert scope_mismatch(scope, wider, ("c" * 64,), REQUESTED_BY) == (
        "AwaitingApproval",
        "covers other aggregates",
    )
    # …nor drop the declarations, nor add some to a scope that names none.
    assert scope_mismatch(scope, plain, ("c" * 64,), REQUESTED_BY) is not None
    bare = scope.model_copy(update={"aggregates_hash": None})
    assert scope_mismatch(bare, counting, ("c" * 64,), REQUESTED_BY) is not None
    assert scope_mismatch(bare, plain, ("c" * 64,), REQUESTED_BY) is None


def test_a_standing_approval_binds_the_text_each_aggregate_reads() -> None:
    from pht_contract.hashing import aggregates_hash

    body = train_body("km")["spec"]
    counts = [{"name": "stages", "query": "survival", "kind": "Count", "by": ["stage"]}]
    original = TrainSpec.model_validate({**body, "aggregates": counts})
    assert original.queries is not None
    narrower = original.queries[0].sparql + "\nLIMIT 10"
    swapped = TrainSpec.model_validate(
        {**body, "aggregates": counts, "queries": [{"name": "survival", "sparql": narrower}]}
    )
    # Same declarations, another text under the name they read: another hash.
    assert aggregates_hash(original) != aggregates_hash(swapped)
