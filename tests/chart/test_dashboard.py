"""The Grafana dashboard shipped in the chart: every query is valid PromQL (checked by promtool),
uses only metrics the operator and station API export, and can be narrowed to stations."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from .metric_names import (
    HISTOGRAMS,
    OPERATOR_METRICS,
    STATION_API_METRICS,
    referenced_metrics,
    unknown_metrics,
)
from .rendering import CHART, documents, one, render_profile, run, tool

DASHBOARD = CHART / "files" / "dashboards" / "pht-station.json"
#: Grafana's variables replaced by values Prometheus accepts, to check the PromQL itself.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$station": ".*",
}


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _targets() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = []
    for index, (_, expr) in enumerate(_targets()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool("promtool"), "check", "rules", path])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("title_expr", _targets(), ids=lambda t: t[0])
def test_query_uses_exported_metrics_and_the_station_variable(title_expr: tuple[str, str]) -> None:
    _, expr = title_expr
    assert referenced_metrics(expr), "a panel without a PHT metric"
    assert not unknown_metrics(expr)
    assert 'station=~"$station"' in expr


def test_dashboard_covers_the_documented_views() -> None:
    used = set().union(*(referenced_metrics(expr) for _, expr in _targets()))
    # throughput, turnaround histograms, GPU-seconds by organisation, gateway latency and refusals
    assert {
        "pht_trains_finished_total",
        "pht_turnaround_seconds",
        "pht_gpu_seconds_total",
        "pht_gateway_query_duration_seconds",
        "pht_gateway_queries_total",
    } <= used
    assert used <= OPERATOR_METRICS | STATION_API_METRICS
    assert HISTOGRAMS & used
    gpu = [expr for _, expr in _targets() if "pht_gpu_seconds_total" in expr]
    assert all("organisation" in expr for expr in gpu)


def test_dashboard_structure() -> None:
    dashboard = _dashboard()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["station"]["multi"] and variables["station"]["includeAll"]
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["uid"] == "pht-station"
    kinds = {panel["type"] for panel in dashboard["panels"]}
    assert kinds <= {"row", "stat", "timeseries", "heatmap", "barchart"}


def test_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in _dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_dashboard_config_map_is_picked_up_by_grafana() -> None:
    configmap = one(documents(render_profile("monitoring")), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert json.loads(configmap["data"]["pht-station.json"]) == _dashboard()
