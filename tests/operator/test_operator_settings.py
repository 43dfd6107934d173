"""Operator settings: environment variables and the ``pht operator`` flags that mirror them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pht_cli.commands.operator import settings_from
from pht_cli.main import build_parser
from pht_operator.settings import OperatorSettings


def test_environment_variables_configure_the_operator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    monkeypatch.setenv("PHT_OPERATOR_STATION_NAMESPACES", "hospital-a, hospital-b")
    monkeypatch.setenv("PHT_OPERATOR_RUN_API_POD_LABELS", "app=api,tier=internal")
    monkeypatch.setenv("PHT_OPERATOR_API_TOKEN_FILE", str(token))
    monkeypatch.setenv("PHT_OPERATOR_METRICS_PORT", "9191")
    settings = OperatorSettings()
    assert settings.station_namespaces == ["hospital-a", "hospital-b"]
    assert settings.run_api_pod_labels == {"app": "api", "tier": "internal"}
    assert settings.station_api_token() == "s3cret"
    assert settings.metrics_port == 9191
    assert settings.health_port == 8080 and settings.run_uid == 65532


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHT_OPERATOR_RUN_NAMESPACE", "from-env")
    args = build_parser().parse_args(
        [
            "operator",
            "--station-namespaces",
            "a,b",
            "--run-namespace",
            "runs",
            "--poll-interval",
            "2",
        ]
    )
    settings = settings_from(args)
    assert settings.station_namespaces == ["a", "b"]
    assert settings.run_namespace == "runs"
    assert settings.poll_interval_seconds == 2.0
