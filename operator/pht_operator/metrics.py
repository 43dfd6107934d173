"""Prometheus metrics of the operator (documented in docs/metrics.md).

Every metric carries the constant ``station`` label and only bounded labels: summaries and
reasons are enums from the contract, organisations come from the policy's list (anything else
is ``other``). No names, namespaces, images or free text — a label never identifies a Train.
The names are fixed: the Helm chart's dashboards and alert rules use exactly these.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pht_contract.conditions import Summary

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
WAIT_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
RUN_BUCKETS = (10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 7 * 86400)
#: Label values of ``pht_notifications``: where a notification goes, and what became of it
#: (``dropped``: the queue was full; ``summarised``: folded into a summary under a storm).
NOTIFICATION_CHANNELS = ("smtp", "webhook")
NOTIFICATION_OUTCOMES = ("sent", "failed", "dropped", "summarised")


class WithoutCreatedSeries(Collector):
    """A registry's metrics without their ``*_created`` series.

    prometheus_client stamps every counter and histogram label set with the Unix time of its
    first use, to the microsecond. That time is whatever moment a train chose to make that label
    set appear (its run ending with a new reason, say), so it is left out: dashboards and
    alerts use only the values.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class OperatorMetrics:
    """The operator's metrics in their own registry (one per operator, so tests can start many)."""

    def __init__(self, station: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"station": station}
        self.station = station
        reg = self.registry
        self.trains = Gauge(
            "pht_trains", "Trains by one-word summary.", ["station", "summary"], registry=reg
        )
        self.admissions = Counter(
            "pht_admissions",
            "Admission decisions by outcome (Admitted, Rejected, Waiting) and reason.",
            ["station", "outcome", "reason"],
            registry=reg,
        )
        self.finished = Counter(
            "pht_trains_finished",
            "Trains that reached a terminal condition, by outcome and reason.",
            ["station", "outcome", "reason"],
            registry=reg,
        )
        self.admission_latency = Histogram(
            "pht_admission_latency_seconds",
            "From the operator first seeing a Train to its admission decision.",
            ["station"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.run_start_latency = Histogram(
            "pht_run_start_latency_seconds",
            "From admission (or approval, when required) to the run's Job being recorded.",
            ["station"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.approval_wait = Histogram(
            "pht_approval_wait_seconds",
            "From admission to approval.",
            ["station"],
            buckets=WAIT_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.queue_wait = Histogram(
            "pht_queue_wait_seconds",
            "From the Job's creation to its pod running (queue, scheduling, image pull).",
            ["station"],
            buckets=WAIT_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.run_duration = Histogram(
            "pht_run_duration_seconds",
            "From the run starting to its Job finishing.",
            ["station"],
            buckets=RUN_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.turnaround = Histogram(
            "pht_turnaround_seconds",
            "From the Train's creation to its terminal condition.",
            ["station"],
            buckets=RUN_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.gpu_seconds = Counter(
            "pht_gpu_seconds",
            "GPU-seconds of finished runs by requester organisation (policy list, else other).",
            ["station", "organisation"],
            registry=reg,
        )
        self.reconcile_errors = Counter(
            "pht_reconcile_errors",
            "Reconcile passes that failed and will be retried.",
            ["station"],
            registry=reg,
        ).labels(**labels)
        self.last_watch_event = Gauge(
            "pht_operator_last_watch_event_timestamp_seconds",
            "Unix time of the last watch event, bookmark or listing the operator received.",
            ["station"],
            registry=reg,
        ).labels(**labels)
        self.notifications = Counter(
            "pht_notifications",
            "Steward notifications by channel (smtp, webhook) and outcome (sent, failed, "
            "dropped, summarised).",
            ["station", "channel", "outcome"],
            registry=reg,
        )
        for channel in NOTIFICATION_CHANNELS:
            for outcome in NOTIFICATION_OUTCOMES:
                self.notifications.labels(station=station, channel=channel, outcome=outcome)
        self.up = Gauge("pht_operator_up", "1 while the operator runs.", ["station"], registry=reg)
        self.up.labels(**labels).set(1)
        for summary in Summary:
            self.trains.labels(station=station, summary=summary.value).set(0)

    def count_trains(self, summaries: Iterable[str | None]) -> None:
        counts = {summary.value: 0 for summary in Summary}
        for summary in summaries:
            key = summary or Summary.PENDING.value
            if key in counts:
                counts[key] += 1
        for summary, count in counts.items():
            self.trains.labels(station=self.station, summary=summary).set(count)

    def admission(self, outcome: str, reason: str) -> None:
        self.admissions.labels(station=self.station, outcome=outcome, reason=reason).inc()

    def finish(self, outcome: str, reason: str) -> None:
        self.finished.labels(station=self.station, outcome=outcome, reason=reason).inc()

    def notification(self, channel: str, outcome: str, count: int = 1) -> None:
        self.notifications.labels(station=self.station, channel=channel, outcome=outcome).inc(count)

    def gpu(self, organisation: str, known: Iterable[str], seconds: float) -> None:
        label = organisation if organisation in set(known) else "other"
        self.gpu_seconds.labels(station=self.station, organisation=label).inc(seconds)

    def serve(self, port: int, address: str) -> int:
        """Expose ``/metrics`` on ``port`` (0: any free port); returns the port."""
        server, _ = start_http_server(
            port, addr=address, registry=WithoutCreatedSeries(self.registry)
        )
        return int(server.server_address[1])
