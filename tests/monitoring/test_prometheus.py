"""A real Prometheus watches the station in a box while a Train runs (see conftest.py).

It proves what the chart ships against what the operator and the station API export: every
dashboard query has data after a Train, the alert rules rendered from the chart load and stay
quiet on a healthy station, the operator's down alert fires when the operator stops, and the
metric names pass ``promtool check metrics``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import httpx
import pytest
from chart.rendering import CHART, tool

from .conftest import OPERATOR_SERVICE, STATION, Scenario, chart_alert_rules
from .prometheus import has_number

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

DASHBOARD = CHART / "files" / "dashboards" / "pht-station.json"
#: Panels that cannot have data after one CPU-only Train, and why.
PANELS_WITHOUT_DATA = {
    "GPU-seconds by organisation (selected range)": (
        "the station in a box has no GPU: the counter gains an organisation's series only when "
        "a run has used GPU-seconds"
    ),
    "GPUs in use by organisation": "the same counter as the GPU-seconds panel",
}


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def _panel_query(title: str) -> str:
    (expr,) = [expr for panel, expr in _dashboard_queries() if panel == title]
    return expr


def _as_prometheus_would_get_it(expr: str, window: str) -> str:
    """Grafana's variables as Grafana would fill them for a view of the whole scenario."""
    for variable in ("$__rate_interval", "$__interval", "$__range"):
        expr = expr.replace(variable, window)
    return expr.replace("$station", STATION)


async def _scrape(url: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def test_prometheus_scrapes_both_ports_and_loads_the_chart_rules(
    scenario: Scenario,
) -> None:
    assert [t["status"]["summary"] for t in scenario.trains] == ["Succeeded", "Failed"]
    assert scenario.prometheus.targets_health() == {"operator": "up", "station-api": "up"}
    loaded = {
        rule["name"] for group in scenario.prometheus.rule_groups() for rule in group["rules"]
    }
    rendered = {rule["alert"] for group in chart_alert_rules()["groups"] for rule in group["rules"]}
    assert loaded == rendered and "PHTOperatorDown" in loaded


async def test_metric_names_pass_promtool(scenario: Scenario) -> None:
    """Unit suffixes, counters ending `_total`, no reserved or camel-case names."""
    station = scenario.station
    token = station.metrics_token_file.read_text()
    for name, text in (
        ("operator", await _scrape(station.urls.operator_metrics)),
        ("station API", await _scrape(station.api_metrics_url, token)),
    ):
        assert "pht_" in text
        done = await asyncio.to_thread(
            subprocess.run,
            [str(tool("promtool")), "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), name


async def test_no_process_runtime_or_creation_time_series_are_exported(
    scenario: Scenario,
) -> None:
    """CPU, memory, file descriptors and garbage collection move with what a train does, and a
    `_created` series would stamp the microsecond a train made a label set appear."""
    runtime = scenario.prometheus.query('count({__name__=~"(process|python)_.+"})')
    assert runtime == []
    assert scenario.prometheus.query('count({__name__=~"pht_.+_created"})') == []
    # The label sets the Trains created are there (their values are what the series carry).
    assert scenario.prometheus.query('pht_disclosure_decisions_total{decision="Released"}')
    assert scenario.prometheus.query('pht_trains_finished_total{outcome="Failed"}')
    station_series = scenario.prometheus.query('count by (job) ({__name__=~"pht_.+"})')
    assert {sample["metric"]["job"] for sample in station_series} == {"operator", "station-api"}


async def test_every_dashboard_query_returns_data(scenario: Scenario) -> None:
    window = scenario.window()
    empty: list[str] = []
    unexpected: list[str] = []
    for title, expr in _dashboard_queries():
        result = scenario.prometheus.query(_as_prometheus_would_get_it(expr, window))
        if title in PANELS_WITHOUT_DATA:
            if result:
                unexpected.append(title)
        elif not has_number(result):
            empty.append(f"{title}: {expr} -> {result}")
    assert empty == [], "\n".join(empty)
    assert unexpected == [], f"listed as without data but have data: {unexpected}"


async def test_a_healthy_station_fires_no_alert(scenario: Scenario) -> None:
    # Every `for` is cut to two seconds in this test: wait past it before looking.
    await asyncio.sleep(3)
    assert scenario.prometheus.active_alerts() == {}


async def test_stopping_the_operator_fires_its_down_alert_and_nothing_else(
    scenario: Scenario,
) -> None:
    operator_up = _as_prometheus_would_get_it(_panel_query("Operator up"), scenario.window())
    assert [s["value"][1] for s in scenario.prometheus.query(operator_up)] == ["1"]
    await scenario.station.stop_operator()
    deadline = time.monotonic() + 30
    while scenario.prometheus.active_alerts().get("PHTOperatorDown") != "firing":
        assert time.monotonic() < deadline, scenario.prometheus.active_alerts()
        await asyncio.sleep(0.5)
    firing = scenario.prometheus.active_alerts()
    assert set(firing) == {"PHTOperatorDown"}, firing
    down = scenario.prometheus.query('ALERTS{alertname="PHTOperatorDown", alertstate="firing"}')
    assert [s["metric"]["severity"] for s in down] == ["critical"]
    assert down[0]["metric"]["service"] == OPERATOR_SERVICE
    # The dashboard's stat reads 0, not "No data".
    assert [s["value"][1] for s in scenario.prometheus.query(operator_up)] == ["0"]
