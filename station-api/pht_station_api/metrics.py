"""Prometheus metrics of one station API: constant ``station`` label, bounded labels only.

Each :class:`Metrics` owns its own registry so that two apps in one process (tests, the station
in a box) never collide. Label values are a closed list (the query outcome): never a query, an
IRI, a train name or anything an algorithm chose.

A running train moves most of these series (its queries, refusals, row counts, uploads), so a
series that changed with every request would be a clock-driven signal out of the run, and every
label a train can pick multiplies it. Three things keep that channel narrow: there is no
per-HTTP-request counter at all; the query counter has no ``reason`` label (a train could pick
one of some twenty refusal reasons per request, and the counts per reason would carry many bits
per tick), only the three outcomes, so refusals are one counter; and scrapes never see the live
registry, only a :class:`Snapshot` of it taken once per fixed tick of the wall clock. What a
train can still choose per tick is how many of its queries are answered, refused or fail, and
how many rows and how long they take (the two histograms): see ``docs/metrics.md``.
"""

import math
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

QUERY_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROW_BUCKETS = (0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
QUERY_OUTCOMES = ("answered", "refused", "failed")


class Metrics:
    def __init__(self, station: str) -> None:
        self.station = station
        self.registry = CollectorRegistry(auto_describe=True)
        self.queries = Counter(
            "pht_gateway_queries",
            "SPARQL queries by outcome (answered, refused, failed)",
            ["station", "outcome"],
            registry=self.registry,
        )
        self.query_duration = Histogram(
            "pht_gateway_query_duration_seconds",
            "Time from a parsed query to its serialised answer",
            ["station"],
            buckets=QUERY_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rows = Histogram(
            "pht_gateway_rows",
            "Rows (or triples) in answered queries",
            ["station"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self.store_up = Gauge(
            "pht_store_up",
            "1 when the data store answers, 0 when it does not",
            ["station"],
            registry=self.registry,
        )
        self.store_up.labels(station).set(0)
        # Every series exists from the first scrape, at zero: a rate or a quantile over a window
        # that starts before the first query then counts that query (a series born with its
        # first sample hides it from rate()).
        for outcome in QUERY_OUTCOMES:
            self.queries.labels(station, outcome)
        self.query_duration.labels(station)
        self.rows.labels(station)

    def query_answered(self, seconds: float, rows: int) -> None:
        self.queries.labels(self.station, "answered").inc()
        self.query_duration.labels(self.station).observe(seconds)
        self.rows.labels(self.station).observe(rows)

    def query_refused(self) -> None:
        """One refused counter: the reason is in the provenance record, never in a label."""
        self.queries.labels(self.station, "refused").inc()

    def query_failed(self) -> None:
        self.queries.labels(self.station, "failed").inc()


class WithoutCreatedSeries(Collector):
    """A registry's metrics without their ``*_created`` series.

    prometheus_client stamps every counter and histogram label set with the Unix time of its
    first use, to the microsecond. That time is whatever moment a train chose to make that label
    set appear (its first refused query, its first blocked upload, its run ending with a new
    reason), so it is left out: dashboards and alerts use only the values.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class Snapshot:
    """The exposition of a registry, taken at the first scrape of each clock tick.

    The text is regenerated at most once per ``seconds``-long tick (ticks are aligned to the
    wall clock, not to scrapes) and every other scrape in that tick gets the same bytes, so
    whatever a train does shows up, summed, at most once per tick: the timing of its requests
    carries nothing at a finer resolution.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if seconds <= 0:
            raise ValueError("the snapshot tick must be positive")
        self._exported = WithoutCreatedSeries(registry)
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._tick: int | None = None
        self._text = b""

    def exposition(self) -> bytes:
        tick = math.floor(self._clock() / self._seconds)
        with self._lock:
            if tick != self._tick:
                self._text = generate_latest(self._exported)
                self._tick = tick
            return self._text
