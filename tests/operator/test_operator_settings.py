"""Operator settings: environment variables and the ``pht operator`` flags that mirror them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pht_cli.commands.operator import settings_from
from pht_cli.main import build_parser
from pht_operator import settings as settings_module
from pht_operator.settings import OperatorSettings, SettingsError


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


@pytest.fixture
def no_service_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Outside a pod: the service-account namespace file is absent (a test path)."""
    path = tmp_path / "namespace"
    monkeypatch.setattr(settings_module, "SERVICE_ACCOUNT_NAMESPACE_FILE", path)
    return path


def test_the_station_api_namespace_defaults_to_the_operators_own(
    monkeypatch: pytest.MonkeyPatch, no_service_account: Path
) -> None:
    with pytest.raises(SettingsError, match="PHT_OPERATOR_STATION_API_NAMESPACE"):
        OperatorSettings().check_startup()
    # a station in a box (runs are local processes, loopback URL) needs none
    OperatorSettings(run_api_url="http://127.0.0.1:18081").check_startup()
    no_service_account.write_text("pht-system\n")
    assert OperatorSettings().station_api_namespace == "pht-system"
    monkeypatch.setenv("PHT_OPERATOR_STATION_API_NAMESPACE", "pht-api")
    settings = OperatorSettings()
    settings.check_startup()
    assert settings.station_api_namespace == "pht-api"


@pytest.mark.parametrize("labels", ["", " , ", "{}"])
def test_empty_station_api_pod_labels_are_refused(
    monkeypatch: pytest.MonkeyPatch, labels: str
) -> None:
    monkeypatch.setenv("PHT_OPERATOR_RUN_API_POD_LABELS", labels)
    with pytest.raises(ValueError, match="empty selector would open every pod"):
        OperatorSettings()


@pytest.mark.parametrize(
    "url",
    ["http://pht-station-api-internal:8081", "http://api.pht.svc.cluster.local:8081"],
)
def test_a_run_api_url_with_a_hostname_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="runs have no DNS"):
        OperatorSettings(run_api_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.96.0.50:8081",
        "http://[fd00::50]:8081",
        "http://127.0.0.1:9",
        "http://localhost:9",
    ],
)
def test_a_run_api_url_by_address_or_loopback_is_accepted(url: str) -> None:
    assert OperatorSettings(run_api_url=url).run_api_url == url


def test_pht_operator_reports_a_bad_configuration_without_a_traceback(
    capsys: pytest.CaptureFixture[str], no_service_account: Path
) -> None:
    from pht_cli.commands.operator import run

    args = build_parser().parse_args(["operator", "--run-api-url", "http://api-host:8081"])
    assert run(args) == 2
    assert "runs have no DNS" in capsys.readouterr().err
    args = build_parser().parse_args(["operator"])
    assert run(args) == 2
    assert "PHT_OPERATOR_STATION_API_NAMESPACE" in capsys.readouterr().err
