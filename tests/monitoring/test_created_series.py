"""No scrape tells *when* a label set first appeared (prometheus_client's `_created` series).

A train picks the moment of its first refused query or blocked upload, or the moment its run
ends with a new reason; a `_created` series would publish that moment to the microsecond,
past the station API's snapshot tick. Both metrics ports leave those series out.
"""

import time

import httpx

from pht_operator.metrics import OperatorMetrics
from pht_station_api.metrics import Metrics, Snapshot
from pht_station_api.results.metrics import result_metrics


def _station_api_exposition(pause: float) -> bytes:
    """The same counts, with the label sets appearing ``pause`` seconds apart."""
    metrics = Metrics("s")
    results = result_metrics(metrics)
    metrics.query_refused()
    time.sleep(pause)
    results.decided("Blocked", "MinimumCellCount")
    return Snapshot(metrics.registry, 60, lambda: 1000.0).exposition()


def test_the_moment_a_label_set_appears_is_not_in_the_station_api_scrape() -> None:
    early, late = _station_api_exposition(0.0), _station_api_exposition(0.05)
    assert b"_created" not in early
    assert b'pht_disclosure_decisions_total{decision="Blocked"' in early
    assert early == late


def test_the_operator_port_has_no_creation_times() -> None:
    metrics = OperatorMetrics("s")
    metrics.finish("Failed", "DeadlineExceeded")
    port = metrics.serve(0, "127.0.0.1")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'pht_trains_finished_total{outcome="Failed",reason="DeadlineExceeded"' in text
    assert "_created" not in text
