"""docs/metrics.md lists the chart's alerts with the thresholds the rules really use: every
comparison, every range window, the `for` duration and the severity of each PrometheusRule
alert the chart renders must equal the table's row, and the table lists exactly those alerts."""

import re
from typing import Any

import pytest

from .rendering import ROOT, documents, one, render_profile

METRICS_DOC = ROOT / "docs" / "metrics.md"
COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)\s*(\d+(?:\.\d+)?)(?![\w.])")
WINDOW = re.compile(r"\[(\d+[smhdw])\]")


def _thresholds(text: str) -> tuple[set[tuple[str, float]], set[str]]:
    """The numeric comparisons and range windows of a PromQL expression or a table cell."""
    comparisons = {(op, float(number)) for op, number in COMPARISON.findall(text)}
    return comparisons, set(WINDOW.findall(text))


def _documented() -> dict[str, dict[str, Any]]:
    section = METRICS_DOC.read_text().split("\n# Alerts\n", 1)[1].split("\n# ", 1)[0]
    rows: dict[str, dict[str, Any]] = {}
    for line in section.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        match = re.fullmatch(r"`(PHT\w+)`", cells[0]) if cells else None
        if match:
            alert, condition, duration, severity = match[1], *cells[1:]
            rows[alert] = {
                "thresholds": _thresholds(condition),
                "for": None if duration in {"–", "-", ""} else duration,
                "severity": severity,
            }
    return rows


def _rendered_rules() -> dict[str, dict[str, Any]]:
    rule = one(documents(render_profile("monitoring")), "PrometheusRule")
    return {
        r["alert"]: {
            "thresholds": _thresholds(r["expr"]),
            "for": r.get("for"),
            "severity": r["labels"]["severity"],
        }
        for group in rule["spec"]["groups"]
        for r in group["rules"]
    }


def test_the_table_lists_exactly_the_rendered_alerts() -> None:
    assert set(_documented()) == set(_rendered_rules())


@pytest.mark.parametrize("alert", sorted(_rendered_rules()))
def test_documented_thresholds_equal_the_rules(alert: str) -> None:
    documented, rule = _documented()[alert], _rendered_rules()[alert]
    assert rule["thresholds"][0], f"{alert}: the rule has no threshold to compare"
    assert documented == rule


def test_a_changed_threshold_is_caught() -> None:
    """Guards the comparison: the old doc's `> 300` for the watch is not the rule's `> 1800`."""
    old = _thresholds("`time() - pht_operator_last_watch_event_timestamp_seconds > 300`")
    assert old != _rendered_rules()["PHTOperatorWatchStalled"]["thresholds"]
    assert (
        _thresholds("rate(x[5m]) > 0.05") != _rendered_rules()["PHTReconcileErrors"]["thresholds"]
    )
