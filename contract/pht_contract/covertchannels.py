"""Covert channels out of a run: everything a train's code can move that someone outside reads.

A train has row-level access to its answers and leaves legitimately only through the disclosure
gate. Anything else it can influence and someone outside the hospital can observe carries bits
out. This module lists every such value — the Train's status fields, the Events the operator
posts, the times the API server stamps, the station API's external routes and their headers, and
every metric series of the operator and the station API — each with an upper bound on the bits a
run can put into it:

    bits per run = times per run × log2(distinguishable values the train can choose each time)

A value the train cannot influence (fixed at admission, chosen by the requester, a steward or
the cluster before the code runs) has one choice: 0 bits. Bounds follow the station policy's
limits (:class:`RunLimits`). ``tests/security/test_covert_inventory.py`` walks the CRD, the
Event the operator builds, the external routes and both metrics registries, and fails on
anything missing here or listed here but gone; docs/security.md states the resulting budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pht_contract.conditions import Reason, Summary
from pht_contract.policies import StationPolicySpec
from pht_contract.times import RESEARCHER_TIME_STEP_SECONDS
from pht_contract.trainfailures import shown_reason_choices
from pht_contract.trains import ProgressStage


class Surface(StrEnum):
    """Where the value is read."""

    TRAIN_STATUS = "TrainStatus"  # status.* of the Train (kubectl get train -o yaml)
    TRAIN_EVENT = "TrainEvent"  # the Events the operator posts about a Train
    API_SERVER = "ApiServer"  # what the Kubernetes API server stamps on every write
    EXTERNAL_ROUTE = "ExternalRoute"  # the station API's external listener (the Ingress)
    OPERATOR_METRIC = "OperatorMetric"  # the operator's /metrics
    STATION_API_METRIC = "StationApiMetric"  # the station API's metrics listener


class Reader(StrEnum):
    """Who reads it."""

    REQUESTER = "requester"  # may read Trains of the namespace (the researcher role)
    PUBLIC = "public"  # anyone who reaches the external listener, researchers included
    STEWARD = "steward"  # holds the release verb: not a covert reader
    SCRAPER = "scraper"  # holds the metrics token, or reads Prometheus and Grafana


#: Readers a researcher is: the budget per requester sums their channels.
RESEARCHER_READERS: Final = frozenset({Reader.REQUESTER, Reader.PUBLIC})

# Limits of the code that the policy does not set (each checked against its source by a test).
#: Most pod retries a Train may ask for (``spec.retries`` maximum).
MAX_RETRIES: Final = 5
#: Most result uploads a run may make (the station API's ``MAX_UPLOADS``).
MAX_UPLOADS: Final = 6
#: Rules of the disclosure gate a result can be held or blocked by.
GATE_RULES: Final = 31
#: Visible progress percentages are multiples of this.
PROGRESS_PERCENT_STEP: Final = 25
#: Buckets (upper bounds, ``+Inf`` not counted) of the station API's query histograms.
QUERY_DURATION_BUCKETS: Final = 13
ROW_BUCKETS: Final = 8
#: Buckets of the operator's run-duration and turnaround histograms.
RUN_BUCKETS: Final = 9
#: Resolution of a float that counts seconds from a microsecond clock.
MICROSECONDS: Final = 10**6
#: Resolution of the nanosecond clock in an Event's name.
NANOSECONDS: Final = 10**9


@dataclass(frozen=True)
class RunLimits:
    """What bounds a run: the policy's limits and the station's fixed ticks."""

    run_seconds: int = 86400
    queries_per_minute: int = 60
    query_timeout_seconds: int = 30
    row_cap: int = 10000
    standing_max_runs: int = 20
    time_step_seconds: int = RESEARCHER_TIME_STEP_SECONDS
    progress_tick_seconds: int = 30
    metrics_tick_seconds: int = 60
    #: How often the load a train puts on the station can be told apart from outside.
    load_resolution_seconds: int = 1

    @classmethod
    def of_policy(cls, policy: StationPolicySpec) -> RunLimits:
        """The limits a StationPolicy sets; the station's ticks at their defaults."""
        return cls(
            run_seconds=policy.timeouts.max_seconds,
            queries_per_minute=policy.data_access.queries_per_minute,
            query_timeout_seconds=policy.data_access.query_timeout_seconds,
            row_cap=policy.data_access.row_cap,
            standing_max_runs=policy.approval.standing.max_runs,
        )

    def ticks(self, seconds: int) -> int:
        """Ticks of ``seconds`` in the longest run (a partial tick counts)."""
        return -(-self.run_seconds // seconds)

    @property
    def end_minutes(self) -> int:
        """Moments in whole minutes a run can end at."""
        return self.run_seconds // self.time_step_seconds + 1

    @property
    def end_seconds(self) -> int:
        return self.run_seconds + 1

    @property
    def end_microseconds(self) -> int:
        return self.run_seconds * MICROSECONDS + 1

    @property
    def queries_per_tick(self) -> int:
        return -(-self.queries_per_minute * self.metrics_tick_seconds // 60)

    @property
    def queries_per_run(self) -> int:
        return -(-self.queries_per_minute * self.run_seconds // 60)

    @property
    def progress_paths(self) -> int:
        """Forward-only paths over (stage, percent) states, one state per progress tick."""
        states = len(ProgressStage) * (100 // PROGRESS_PERCENT_STEP + 1)
        ticks = self.ticks(self.progress_tick_seconds)
        return math.comb(ticks + states - 1, states - 1)

    @property
    def outcomes(self) -> int:
        """How a run ends, as the conditions name it: the reasons, with a rule when held."""
        return len(Reason) * (GATE_RULES + 1)


Count = Callable[[RunLimits], int]


def _one(_: RunLimits) -> int:
    return 1


@dataclass(frozen=True)
class Channel:
    """One value someone outside reads, and how much of it a run can choose."""

    surface: Surface
    #: The field path, Event field or action, ``METHOD path`` or header, or metric family.
    name: str
    reader: Reader
    #: Distinguishable values the train can choose each time (1: none; 0 bits).
    choices: Count
    #: How often per run it can choose.
    times: Count
    #: Why the bound holds, in words.
    why: str
    #: Metric label names (without ``le``); empty for anything else.
    labels: tuple[str, ...] = ()

    def bits(self, limits: RunLimits) -> float:
        """The upper bound in bits per run."""
        choices = self.choices(limits)
        return 0.0 if choices <= 1 else self.times(limits) * math.log2(choices)


def _fixed(surface: Surface, name: str, reader: Reader, why: str, *labels: str) -> Channel:
    """A value the train cannot influence: 0 bits."""
    return Channel(surface, name, reader, _one, _one, why, labels)


def _status(name: str, choices: Count, why: str) -> Channel:
    return Channel(Surface.TRAIN_STATUS, name, Reader.REQUESTER, choices, _one, why)


_BEFORE_RUN = "set before the train's code runs (admission, approval, the requester's spec)"
_OUTCOME = "a function of how the run ended, counted once under the condition's reason"
_GATED = "the released result itself: judged by the disclosure gate and, by default, a steward"

_STATUS: Final = (
    _fixed(Surface.TRAIN_STATUS, "status.observedGeneration", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.specHash", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.approvedBy[]", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.summary", Reader.REQUESTER, _OUTCOME),
    _fixed(Surface.TRAIN_STATUS, "status.conditions[].type", Reader.REQUESTER, _OUTCOME),
    _fixed(Surface.TRAIN_STATUS, "status.conditions[].status", Reader.REQUESTER, _OUTCOME),
    _fixed(
        Surface.TRAIN_STATUS,
        "status.conditions[].observedGeneration",
        Reader.REQUESTER,
        "the Train's generation: the requester's edits",
    ),
    _status(
        "status.conditions[].reason",
        lambda limits: len(Reason),
        "every reason written after the run starts follows from one outcome (how the run "
        "ended and what the gate decided), at most one Reason value per run",
    ),
    _status(
        "status.conditions[].message",
        lambda limits: (GATE_RULES + 1) * (MAX_RETRIES + 2) * shown_reason_choices(),
        "fixed texts but for the gate's rule of a held or blocked result, the attempts of a "
        "failed run and the reason its train gave: none, one of "
        "pht_contract.trainfailures.TRAIN_FAILURE_REASONS, or UnlistedReason for any other "
        "termination message",
    ),
    _status(
        "status.conditions[].lastTransitionTime",
        lambda limits: limits.end_minutes,
        "whole minutes for Running, Succeeded, Failed and ResultReleased, which change when "
        "the run ends (a steward's later release is the steward's moment); Admitted and "
        "Approved are set before the run",
    ),
    _fixed(
        Surface.TRAIN_STATUS,
        "status.startTime",
        Reader.REQUESTER,
        "when the pod started: before the train's code runs",
    ),
    _status("status.completionTime", lambda limits: limits.end_minutes, "whole minutes of the run"),
    _status(
        "status.durationSeconds",
        lambda limits: limits.end_minutes,
        "whole minutes, at most the policy's longest run",
    ),
    _status(
        "status.attempts",
        lambda limits: MAX_RETRIES + 2,
        "0 to retries + 1 pods: a train fails on purpose to start another",
    ),
    _status(
        "status.progress.stage",
        lambda limits: limits.progress_paths,
        "one forward-only path of (stage, percent) states, each step on a progress tick",
    ),
    _fixed(
        Surface.TRAIN_STATUS,
        "status.progress.percent",
        Reader.REQUESTER,
        "counted with status.progress.stage",
    ),
    _fixed(
        Surface.TRAIN_STATUS,
        "status.progress.updatedAt",
        Reader.REQUESTER,
        "the progress tick: counted with status.progress.stage",
    ),
    _fixed(Surface.TRAIN_STATUS, "status.run.namespace", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.run.jobName", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.run.jobUid", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.run.secretName", Reader.REQUESTER, _BEFORE_RUN),
    _fixed(Surface.TRAIN_STATUS, "status.result.digest", Reader.REQUESTER, _GATED),
    _fixed(Surface.TRAIN_STATUS, "status.result.sizeBytes", Reader.REQUESTER, _GATED),
    _fixed(
        Surface.TRAIN_STATUS,
        "status.result.releaseState",
        Reader.REQUESTER,
        "always Released",
    ),
    _status(
        "status.result.releasedAt",
        lambda limits: limits.end_minutes,
        "whole minutes; the gate releases when the run ends",
    ),
)


def _event(name: str, choices: Count, why: str) -> Channel:
    return Channel(Surface.TRAIN_EVENT, name, Reader.REQUESTER, choices, _one, why)


def _event_fixed(name: str, why: str) -> Channel:
    return _fixed(Surface.TRAIN_EVENT, name, Reader.REQUESTER, why)


_EVENT_FIELDS: Final = (
    _event_fixed("apiVersion", "constant"),
    _event_fixed("kind", "constant"),
    _event_fixed("metadata.namespace", "the Train's namespace"),
    _event_fixed("reportingController", "constant"),
    _event_fixed("reportingInstance", "the operator's pod"),
    _event_fixed("regarding.apiVersion", "the Train"),
    _event_fixed("regarding.kind", "the Train"),
    _event_fixed("regarding.name", "the Train"),
    _event_fixed("regarding.namespace", "the Train"),
    _event_fixed("regarding.uid", "the Train"),
    _event_fixed("action", _OUTCOME),
    _event_fixed("type", _OUTCOME),
    _event("reason", lambda limits: len(Reason), "as the conditions' reason"),
    _event(
        "note",
        lambda limits: (GATE_RULES + 1) * (MAX_RETRIES + 2) * shown_reason_choices(),
        "as the conditions' message",
    ),
    _event(
        "eventTime",
        lambda limits: limits.end_microseconds,
        "the operator's clock to the microsecond when it saw the run end",
    ),
    _event(
        "metadata.name",
        lambda limits: limits.run_seconds * NANOSECONDS + 1,
        "the Train's name and the operator's nanosecond clock when it posted",
    ),
)

#: Actions of the Events the operator posts, by whether a train's code can cause them.
_EVENT_ACTIONS: Final = (
    _event_fixed("action:Admit", _BEFORE_RUN),
    _event_fixed("action:Approve", _BEFORE_RUN),
    _event_fixed("action:Register", _BEFORE_RUN),
    _event_fixed("action:CreateRun", _BEFORE_RUN),
    _event_fixed("action:Suspend", "the requester suspends"),
    _event_fixed("action:Delete", "the requester deletes"),
    _event_fixed("action:FollowRun", _OUTCOME),
    _event_fixed("action:MirrorRelease", _OUTCOME),
    _event_fixed("action:Finish", _OUTCOME),
)

_API_SERVER: Final = (
    Channel(
        Surface.API_SERVER,
        "Train metadata.managedFields[].time",
        Reader.REQUESTER,
        lambda limits: limits.end_seconds,
        _one,
        "the API server stamps the operator's last status write, at the run's end, to the "
        "second; the station cannot coarsen it",
    ),
    Channel(
        Surface.API_SERVER,
        "Event metadata.creationTimestamp",
        Reader.REQUESTER,
        lambda limits: limits.end_seconds,
        _one,
        "the API server stamps an Event's creation to the second",
    ),
    _fixed(
        Surface.API_SERVER,
        "Train metadata.resourceVersion",
        Reader.REQUESTER,
        "counts the cluster's writes; a run's own writes are its progress and its end, "
        "counted there",
    ),
)

_STEWARDS_ONLY = "stewards only: RBAC refuses a researcher (403) before anything is looked up"
_STORE = "the data store's own figures: a run's queries are read-only"

_CONSOLE_ENTRY = "the same for every visitor: a redirect, a sign-in form or page, a style sheet"
_CONSOLE_STEWARDS = "console pages of one Train: RBAC refuses a researcher (403) before any lookup"

_CONSOLE: Final = (
    *(
        _fixed(Surface.EXTERNAL_ROUTE, route, Reader.PUBLIC, _CONSOLE_ENTRY)
        for route in (
            "GET /console",
            "GET /console/",
            "GET /console/signin",
            "GET /console/signin/callback",
            "POST /console/signin/callback",
            "POST /console/signout",
            "GET /console/static",
        )
    ),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /console/approvals",
        Reader.REQUESTER,
        "lists only the Trains RBAC lets the reader approve: none for a researcher",
    ),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /console/results",
        Reader.REQUESTER,
        "lists only the results RBAC lets the reader release: none for a researcher",
    ),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /console/trains",
        Reader.REQUESTER,
        "the status fields (summary, progress, conditions) of the Trains the reader may get, "
        "as kubectl shows them: counted under TrainStatus",
    ),
    *(
        _fixed(Surface.EXTERNAL_ROUTE, route, Reader.STEWARD, _CONSOLE_STEWARDS)
        for route in (
            "GET /console/approvals/{namespace}/{name}",
            "POST /console/approvals/{namespace}/{name}",
            "GET /console/results/{namespace}/{name}",
            "GET /console/results/{namespace}/{name}/plots/{plot}",
            "POST /console/results/{namespace}/{name}",
            "GET /console/trains/{namespace}/{name}",
            "GET /console/audit",
        )
    ),
)

_ROUTES: Final = (
    *_CONSOLE,
    _fixed(Surface.EXTERNAL_ROUTE, "GET /stewards/held", Reader.STEWARD, _STEWARDS_ONLY),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /stewards/results/{namespace}/{name}",
        Reader.STEWARD,
        _STEWARDS_ONLY,
    ),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "POST /stewards/results/{namespace}/{name}/decision",
        Reader.STEWARD,
        _STEWARDS_ONLY,
    ),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /stewards/results/{namespace}/{name}/provenance",
        Reader.STEWARD,
        _STEWARDS_ONLY,
    ),
    Channel(
        Surface.EXTERNAL_ROUTE,
        "GET /results/{namespace}/{name}",
        Reader.REQUESTER,
        lambda limits: 2,
        _one,
        "released or not (NotReleased); the body is " + _GATED,
    ),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /results/{namespace}/{name}/tables/{table}",
        Reader.REQUESTER,
        "one table of " + _GATED,
    ),
    _fixed(Surface.EXTERNAL_ROUTE, "header:content-type", Reader.REQUESTER, "constant"),
    _fixed(Surface.EXTERNAL_ROUTE, "header:content-length", Reader.REQUESTER, _GATED),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "header:content-disposition",
        Reader.REQUESTER,
        "the table's name: " + _GATED,
    ),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /healthz", Reader.PUBLIC, "constant"),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /openapi.json", Reader.PUBLIC, "constant"),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /docs", Reader.PUBLIC, "constant"),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /docs/oauth2-redirect", Reader.PUBLIC, "constant"),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /redoc", Reader.PUBLIC, "constant"),
    _fixed(
        Surface.EXTERNAL_ROUTE,
        "GET /readyz",
        Reader.PUBLIC,
        "ready or not: a train that keeps the query workers and the store busy can make the "
        "ping fail, the same choice (loaded or idle) as the latency: counted there",
    ),
    Channel(
        Surface.EXTERNAL_ROUTE,
        "latency",
        Reader.PUBLIC,
        lambda limits: 2,
        lambda limits: limits.ticks(limits.load_resolution_seconds),
        "how fast any route answers follows the load a train puts on the station: loaded "
        "or idle per second of the run",
    ),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /", Reader.PUBLIC, _STORE),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /catalog/", Reader.PUBLIC, _STORE),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /catalog/{catalog_id}", Reader.PUBLIC, _STORE),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /catalog/{catalog_id}/dataset/", Reader.PUBLIC, _STORE),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /dataset/{name}", Reader.PUBLIC, _STORE),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /dataset/{name}/distribution/", Reader.PUBLIC, _STORE),
    _fixed(Surface.EXTERNAL_ROUTE, "GET /distribution/{name}-sparql", Reader.PUBLIC, _STORE),
)


def _operator(name: str, labels: tuple[str, ...], choices: Count, why: str) -> Channel:
    return Channel(Surface.OPERATOR_METRIC, name, Reader.SCRAPER, choices, _one, why, labels)


def _operator_fixed(name: str, labels: tuple[str, ...], why: str) -> Channel:
    return _fixed(Surface.OPERATOR_METRIC, name, Reader.SCRAPER, why, *labels)


_STATION = ("station",)

_OPERATOR_METRICS: Final = (
    _operator(
        "pht_trains",
        ("station", "summary"),
        lambda limits: len(Summary),
        "the run's summary after it starts: one outcome",
    ),
    _operator_fixed("pht_admissions", ("outcome", "reason", "station"), _BEFORE_RUN),
    _operator(
        "pht_trains_finished",
        ("outcome", "reason", "station"),
        lambda limits: len(Summary) * len(Reason),
        "one increment per run, by outcome and reason",
    ),
    _operator_fixed("pht_admission_latency_seconds", _STATION, _BEFORE_RUN),
    _operator_fixed("pht_run_start_latency_seconds", _STATION, _BEFORE_RUN),
    _operator_fixed("pht_approval_wait_seconds", _STATION, "a steward's moment"),
    _operator_fixed("pht_queue_wait_seconds", _STATION, "before the train's code runs"),
    _operator(
        "pht_run_duration_seconds",
        _STATION,
        lambda limits: (RUN_BUCKETS + 1) * limits.end_seconds,
        "a bucket and, in _sum, the run's length to the second",
    ),
    _operator(
        "pht_turnaround_seconds",
        _STATION,
        lambda limits: (RUN_BUCKETS + 1) * limits.end_microseconds,
        "a bucket and, in _sum, the operator's clock to the microsecond at the end",
    ),
    _operator(
        "pht_gpu_seconds",
        ("organisation", "station"),
        lambda limits: limits.end_seconds,
        "the run's length to the second times its GPUs",
    ),
    _operator_fixed(
        "pht_reconcile_errors",
        _STATION,
        "failures of the API server or the station API, not of the run",
    ),
    _operator(
        "pht_notifications",
        ("channel", "outcome", "station"),
        lambda limits: 2 * 4 + 1,
        "at most one notice per run (its result held for review, which the gate decides and "
        "the outcomes count), sent, failed, dropped or summarised by either of two channels",
    ),
    _operator(
        "pht_operator_last_watch_event_timestamp_seconds",
        _STATION,
        lambda limits: limits.end_microseconds,
        "the moment of the last watch event, to the microsecond: the run's end among them",
    ),
    _operator_fixed("pht_operator_up", _STATION, "constant"),
)


def _api(name: str, labels: tuple[str, ...], choices: Count, times: Count, why: str) -> Channel:
    return Channel(Surface.STATION_API_METRIC, name, Reader.SCRAPER, choices, times, why, labels)


def _per_tick(limits: RunLimits) -> int:
    return limits.ticks(limits.metrics_tick_seconds)


_API_METRICS: Final = (
    _api(
        "pht_gateway_queries",
        ("outcome", "station"),
        lambda limits: 4,
        lambda limits: limits.queries_per_run,
        "each query the rate limit allows: answered, refused, failed or not sent",
    ),
    _api(
        "pht_gateway_query_duration_seconds",
        _STATION,
        lambda limits: (
            (QUERY_DURATION_BUCKETS + 1) ** limits.queries_per_tick
            * (limits.queries_per_tick * limits.query_timeout_seconds * MICROSECONDS + 1)
        ),
        _per_tick,
        "per snapshot tick: a bucket per query, and _sum to the microsecond",
    ),
    _api(
        "pht_gateway_rows",
        _STATION,
        lambda limits: (
            (ROW_BUCKETS + 1) ** limits.queries_per_tick
            * (limits.queries_per_tick * limits.row_cap + 1)
        ),
        _per_tick,
        "per snapshot tick: a bucket per query, and _sum to the row",
    ),
    _api(
        "pht_store_up",
        _STATION,
        lambda limits: 2,
        _per_tick,
        "a failing query marks the store down until the next readiness probe",
    ),
    _api(
        "pht_disclosure_decisions",
        ("decision", "rule", "station"),
        lambda limits: 3 * (GATE_RULES + 1) + 1,
        _one,
        "the gate decides once per run: a decision and a rule",
    ),
    _api(
        "pht_uploads",
        _STATION,
        lambda limits: math.comb(_per_tick(limits) + MAX_UPLOADS, MAX_UPLOADS),
        _one,
        "up to MAX_UPLOADS uploads placed on snapshot ticks",
    ),
    _api(
        "pht_results_held",
        _STATION,
        lambda limits: 2,
        _one,
        "the run's result held or not",
    ),
)

INVENTORY: Final[tuple[Channel, ...]] = (
    *_STATUS,
    *_EVENT_FIELDS,
    *_EVENT_ACTIONS,
    *_API_SERVER,
    *_ROUTES,
    *_OPERATOR_METRICS,
    *_API_METRICS,
)


def channels(surface: Surface) -> dict[str, Channel]:
    """The inventory of one surface, by name."""
    return {channel.name: channel for channel in INVENTORY if channel.surface == surface}


def bits_per_run(limits: RunLimits, readers: Iterable[Reader]) -> float:
    """The sum of the bounds of every channel those readers see, for one run."""
    wanted = frozenset(readers)
    return sum(channel.bits(limits) for channel in INVENTORY if channel.reader in wanted)


def requester_budget(policy: StationPolicySpec) -> float:
    """Bits a requester can receive through one standing approval (``approval.standing``: at
    most ``maxRuns`` runs within ``maxDays``): runs × bits per run."""
    limits = RunLimits.of_policy(policy)
    return limits.standing_max_runs * bits_per_run(limits, RESEARCHER_READERS)


def scraper_budget(policy: StationPolicySpec) -> float:
    """Bits whoever reads the metrics can receive from the same runs."""
    limits = RunLimits.of_policy(policy)
    return limits.standing_max_runs * bits_per_run(limits, {Reader.SCRAPER})
