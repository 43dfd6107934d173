"""The alert rules shipped in the chart: valid for Prometheus, unit-tested with
`promtool test rules` (every alert shown firing), wrapped unchanged in the PrometheusRule, and
documented in docs/operations.md."""

from pathlib import Path
from typing import Any

import yaml

from .metric_names import unknown_metrics
from .rendering import CHART, ROOT, documents, helm_template, one, render_profile, run, tool

RULES = CHART / "files" / "alerts" / "pht-station.rules.yaml"
UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")


def _alerts() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_rules_file_is_valid_prometheus() -> None:
    result = run([tool("promtool"), "check", "rules", RULES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run([tool("promtool"), "test", "rules", UNIT_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_shown_firing_in_a_unit_test() -> None:
    fired = {
        case["alertname"]
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert {a["alert"] for a in _alerts()} == fired


def test_the_documented_alerts_exist() -> None:
    names = {a["alert"] for a in _alerts()}
    assert {
        "PHTOperatorDown",
        "PHTOperatorWatchStalled",
        "PHTTrainsFailing",
        "PHTTrainsStuckPending",
        "PHTResultsAwaitingRelease",
        "PHTGatewayRefusalsSpiking",
        "PHTDisclosureBlocks",
        "PHTStoreUnreachable",
    } <= names


def test_rules_use_only_exported_metrics_and_are_per_station() -> None:
    for alert in _alerts():
        assert not unknown_metrics(alert["expr"]), alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["annotations"]["runbook_url"].endswith(f"#{alert['alert'].lower()}")


def test_every_alert_has_a_runbook_section() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    for alert in _alerts():
        assert f"### {alert['alert']}\n" in operations, alert["alert"]


def test_prometheus_rule_wraps_the_file_unchanged() -> None:
    rule = one(documents(render_profile("monitoring")), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_an_alert_can_be_switched_off() -> None:
    result = helm_template(
        sets={
            "metrics.prometheusRule.enabled": "true",
            "metrics.prometheusRule.disabledAlerts[0]": "PHTDisclosureBlocks",
        }
    )
    assert result.returncode == 0, result.stderr
    rule = one(documents(result.stdout), "PrometheusRule")
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "PHTDisclosureBlocks" not in names
    assert len(names) == len(_alerts()) - 1


def test_monitoring_is_off_by_default() -> None:
    kinds = {d["kind"] for d in documents(render_profile("default"))}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    configmaps = [d for d in documents(render_profile("default")) if d["kind"] == "ConfigMap"]
    assert configmaps == []
