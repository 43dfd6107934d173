"""The metric names the alerts and the dashboard use are the names the deployables really
export: the operator's and the station API's metric classes are instantiated and their
exposition read, so a renamed metric fails here instead of silently emptying a panel."""

import re

from prometheus_client import CollectorRegistry, generate_latest

from .metric_names import HISTOGRAMS, OPERATOR_METRICS, STATION_API_METRICS


def _exported(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return set(re.findall(r"^# TYPE (\S+) \S+$", text, flags=re.M))


def _histograms(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return set(re.findall(r"^# TYPE (\S+) histogram$", text, flags=re.M))


def test_operator_exports_the_metrics_the_chart_uses() -> None:
    from pht_operator.metrics import OperatorMetrics

    registry = OperatorMetrics("test-station").registry
    assert _exported(registry) >= OPERATOR_METRICS
    assert _histograms(registry) >= HISTOGRAMS & OPERATOR_METRICS


def test_station_api_exports_the_metrics_the_chart_uses() -> None:
    from pht_station_api.metrics import Metrics
    from pht_station_api.results.metrics import ResultMetrics

    metrics = Metrics("test-station")
    ResultMetrics(metrics)
    assert _exported(metrics.registry) >= STATION_API_METRICS
    assert _histograms(metrics.registry) >= HISTOGRAMS & STATION_API_METRICS


def test_label_values_in_rules_and_dashboard_exist_in_the_contract() -> None:
    """`summary` and `reason` values the rules match on are the contract's enumerations."""
    from pht_contract.conditions import Reason, Summary

    from .test_alerts import RULES
    from .test_dashboard import DASHBOARD

    text = RULES.read_text() + DASHBOARD.read_text()
    summaries = [v for alt in re.findall(r'summary=~?\\?"([^"\\]+)', text) for v in alt.split("|")]
    reasons = re.findall(r'reason!?=\\?"([^"\\]+)', text)
    assert {"Pending", "AwaitingRelease"} <= set(summaries)
    assert "DisclosureBlocked" in reasons
    assert set(summaries) <= {s.value for s in Summary}
    assert set(reasons) <= {r.value for r in Reason}
