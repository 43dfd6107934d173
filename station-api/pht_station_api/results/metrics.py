"""Disclosure metrics, registered on the station's own registry (constant ``station`` label).

Labels are the decision (Released/Held/Blocked/NoOutput) and the CamelCase rule, both from
closed enumerations, so their cardinality is bounded whatever an algorithm uploads.
"""

from weakref import WeakKeyDictionary

from prometheus_client import Counter, Gauge

from pht_station_api.metrics import Metrics

NO_RULE = "None"


class ResultMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.station = metrics.station
        self.decisions = Counter(
            "pht_disclosure_decisions",
            "Disclosure decisions (the gate's and stewards') by decision and rule",
            ["station", "decision", "rule"],
            registry=metrics.registry,
        )
        self.uploads = Counter(
            "pht_uploads",
            "Result uploads accepted from running trains",
            ["station"],
            registry=metrics.registry,
        )
        self.held = Gauge(
            "pht_results_held",
            "Results waiting for a steward",
            ["station"],
            registry=metrics.registry,
        )

    def decided(self, decision: str, rule: str | None) -> None:
        self.decisions.labels(self.station, decision, rule or NO_RULE).inc()

    def uploaded(self) -> None:
        self.uploads.labels(self.station).inc()

    def set_held(self, count: int) -> None:
        self.held.labels(self.station).set(count)


_BY_METRICS: "WeakKeyDictionary[Metrics, ResultMetrics]" = WeakKeyDictionary()


def result_metrics(metrics: Metrics) -> ResultMetrics:
    """One set of collectors per station registry (a registry refuses duplicates)."""
    found = _BY_METRICS.get(metrics)
    if found is None:
        found = _BY_METRICS[metrics] = ResultMetrics(metrics)
    return found
