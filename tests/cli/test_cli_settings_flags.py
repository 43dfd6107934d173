"""``pht operator`` and ``pht api`` flags come from the settings models; old names still work."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from pht_cli import settings_flags
from pht_cli.commands.api import settings_overrides
from pht_cli.commands.operator import settings_from
from pht_cli.main import build_parser
from pht_operator.settings import OperatorSettings
from pht_station_api.settings import Settings

# Every flag `pht operator` had before its flags were generated, with a value and the
# setting it must reach.
OPERATOR_FLAGS = [
    ("--station-namespaces", "a, b", "station_namespaces", ["a", "b"]),
    ("--run-namespace", "runs", "run_namespace", "runs"),
    ("--station-api-url", "http://api:1", "station_api_url", "http://api:1"),
    ("--run-api-url", "http://10.0.0.9:81", "run_api_url", "http://10.0.0.9:81"),
    ("--run-api-port", "81", "run_api_port", 81),
    ("--station-api-namespace", "pht-api", "station_api_namespace", "pht-api"),
    ("--api-token-file", "/tok", "api_token_file", Path("/tok")),
    ("--station-name", "hospital", "station_name", "hospital"),
    ("--listen-host", "127.0.0.1", "listen_host", "127.0.0.1"),
    ("--health-port", "18080", "health_port", 18080),
    ("--metrics-port", "19090", "metrics_port", 19090),
    ("--watch-timeout", "5", "watch_timeout_seconds", 5.0),
    ("--stall-factor", "2.5", "stall_factor", 2.5),
    ("--job-ttl", "60", "job_ttl_seconds", 60),
    ("--poll-interval", "2", "poll_interval_seconds", 2.0),
    ("--workers", "4", "workers", 4),
]

# Every flag `pht api` had before, except --host (tested below).
API_FLAGS = [
    ("--store", "/data", "store", Path("/data")),
    ("--sparql-endpoint", "http://db:7200/repo", "sparql_endpoint", "http://db:7200/repo"),
    ("--state-dir", "/state", "state_dir", Path("/state")),
    ("--policy", "/p.yaml", "policy_file", Path("/p.yaml")),
    ("--operator-token-file", "/op", "operator_token_file", Path("/op")),
    ("--station-name", "hospital", "station_name", "hospital"),
    ("--internal-port", "18081", "internal_port", 18081),
    ("--external-port", "18082", "external_port", 18082),
    ("--metrics-port", "19091", "metrics_port", 19091),
    ("--metrics-token-file", "/m", "metrics_token_file", Path("/m")),
]


@pytest.mark.parametrize(("flag", "value", "field", "expected"), OPERATOR_FLAGS)
def test_every_earlier_operator_flag_sets_the_same_setting(
    flag: str, value: str, field: str, expected: object
) -> None:
    args = build_parser().parse_args(["operator", flag, value])
    assert getattr(settings_from(args), field) == expected


@pytest.mark.parametrize(("flag", "value", "field", "expected"), API_FLAGS)
def test_every_earlier_api_flag_sets_the_same_setting(
    flag: str, value: str, field: str, expected: object
) -> None:
    args = build_parser().parse_args(["api", flag, value])
    assert getattr(Settings(**settings_overrides(args)), field) == expected


def test_host_binds_every_listener_unless_one_is_named() -> None:
    args = build_parser().parse_args(["api", "--host", "127.0.0.1", "--metrics-host", "::1"])
    settings = Settings(**settings_overrides(args))
    assert (settings.internal_host, settings.external_host, settings.metrics_host) == (
        "127.0.0.1",
        "127.0.0.1",
        "::1",
    )


def _dests(command: str) -> set[str]:
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return {action.dest for action in subparsers.choices[command]._actions}


def test_every_setting_but_secrets_has_a_flag() -> None:
    for command, model in (("operator", OperatorSettings), ("api", Settings)):
        dests = _dests(command)
        for field in model.model_fields:
            assert (field in dests) != settings_flags.is_secret(field), (command, field)


def test_new_flags_reach_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHT_OPERATOR_SCRATCH_SIZE", "9Gi")
    args = build_parser().parse_args(
        ["operator", "--scratch-size", "2Gi", "--run-api-pod-labels", "app=api,tier=db"]
    )
    settings = settings_from(args)
    assert settings.scratch_size == "2Gi"  # the flag wins over the environment
    assert settings.run_api_pod_labels == {"app": "api", "tier": "db"}
    args = build_parser().parse_args(["api", "--identity-mode", "local", "--query-workers", "3"])
    settings_api = Settings(**settings_overrides(args))
    assert (settings_api.identity_mode, settings_api.query_workers) == ("local", 3)


def test_bad_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["operator", "--workers", "many"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["api", "--identity-mode", "anyone"])


def test_help_comes_from_the_description_or_the_field_name() -> None:
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Demo(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="DEMO_")
        queue_depth: int = Field(default=3, description="jobs waiting at most")
        spool_dir: Path | None = None
        api_token: str | None = None

    parser = argparse.ArgumentParser()
    added = settings_flags.add_settings_flags(parser, Demo, aliases={"queue_depth": ["--qd"]})
    assert [(f.field, f.flags) for f in added] == [
        ("queue_depth", ("--queue-depth", "--qd")),
        ("spool_dir", ("--spool-dir",)),
    ]
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["queue_depth"] == "jobs waiting at most (env DEMO_QUEUE_DEPTH, default 3)"
    assert helps["spool_dir"] == "spool dir (env DEMO_SPOOL_DIR)"
    args = parser.parse_args(["--qd", "7"])
    assert Demo(**settings_flags.overrides(args, Demo)).queue_depth == 7


@pytest.mark.parametrize("model", [OperatorSettings, Settings], ids=["operator", "api"])
def test_every_setting_explains_itself_in_its_flag_s_help(model: type[BaseSettings]) -> None:
    undescribed = [name for name, info in model.model_fields.items() if not info.description]
    assert undescribed == []
    for name, info in model.model_fields.items():
        if settings_flags.is_secret(name):
            continue
        assert info.description is not None
        assert settings_flags.help_text(name, info, "P_").startswith(info.description.strip())
