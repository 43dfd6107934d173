"""The metrics the operator and the station API export (their names are the contract between
them and the alerts and dashboard shipped in the chart)."""

import re

OPERATOR_METRICS = {
    "pht_trains",
    "pht_admissions_total",
    "pht_trains_finished_total",
    "pht_admission_latency_seconds",
    "pht_approval_wait_seconds",
    "pht_queue_wait_seconds",
    "pht_run_duration_seconds",
    "pht_turnaround_seconds",
    "pht_gpu_seconds_total",
    "pht_reconcile_errors_total",
    "pht_notifications_total",
    "pht_operator_last_watch_event_timestamp_seconds",
    "pht_operator_up",
}
STATION_API_METRICS = {
    "pht_gateway_queries_total",
    "pht_gateway_query_duration_seconds",
    "pht_gateway_rows",
    "pht_store_up",
    "pht_disclosure_decisions_total",
    "pht_uploads_total",
    "pht_results_held",
}
HISTOGRAMS = {
    "pht_admission_latency_seconds",
    "pht_approval_wait_seconds",
    "pht_queue_wait_seconds",
    "pht_run_duration_seconds",
    "pht_turnaround_seconds",
    "pht_gateway_query_duration_seconds",
    "pht_gateway_rows",
}
#: Prometheus' own series that the rules may use.
PROMETHEUS_SERIES = {"up"}


def referenced_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression (the pht_* ones), histogram suffixes resolved."""
    names = set()
    for name in re.findall(r"\bpht_[a-z0-9_]+", expr):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if name.endswith(suffix) and base in HISTOGRAMS:
                name = base
        names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    return referenced_metrics(expr) - OPERATOR_METRICS - STATION_API_METRICS
