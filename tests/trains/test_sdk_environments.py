"""A run's identity, parameters and queries come from the environment; gaps are named."""

from pathlib import Path

import pytest

from pht_train import ConfigurationError, ParameterError, QueryNotFound, TrainEnvironment
from pht_train.queries import load_queries, load_query


def test_reads_everything_a_station_sets(run_environment: dict[str, str]) -> None:
    env = TrainEnvironment.from_environ(run_environment)
    assert env.api_url == run_environment["PHT_STATION_API_URL"]
    assert env.token == "s3cret-token"
    assert env.train_uid.startswith("0d9c1f5e")
    assert env.train_name == "km-survival-by-stage"
    assert env.attempt == 1
    assert env.parameters == {"timePoints": [365, 730], "label": "x"}
    assert env.scratch_dir == Path(run_environment["PHT_SCRATCH_DIR"])
    assert "s3cret" not in repr(env)


@pytest.mark.parametrize(
    "missing",
    ["PHT_STATION_API_URL", "PHT_TOKEN_FILE", "PHT_TRAIN_UID", "PHT_TRAIN_NAME", "PHT_QUERIES_DIR"],
)
def test_a_missing_variable_is_named(run_environment: dict[str, str], missing: str) -> None:
    del run_environment[missing]
    with pytest.raises(ConfigurationError, match=missing):
        TrainEnvironment.from_environ(run_environment)


def test_optional_variables_have_defaults(run_environment: dict[str, str]) -> None:
    for name in ("PHT_PARAMETERS", "PHT_ATTEMPT", "PHT_SCRATCH_DIR"):
        del run_environment[name]
    env = TrainEnvironment.from_environ(run_environment)
    assert (env.parameters, env.attempt, env.scratch_dir) == ({}, 1, None)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("[1, 2]", "JSON object"), ("{not json", "not valid JSON"), ('"text"', "JSON object")],
)
def test_parameters_must_be_a_json_object(
    run_environment: dict[str, str], text: str, complaint: str
) -> None:
    run_environment["PHT_PARAMETERS"] = text
    with pytest.raises(ConfigurationError, match=complaint):
        TrainEnvironment.from_environ(run_environment)


def test_an_unreadable_or_empty_token_is_refused(
    run_environment: dict[str, str], tmp_path: Path
) -> None:
    run_environment["PHT_TOKEN_FILE"] = str(tmp_path / "absent")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        TrainEnvironment.from_environ(run_environment)
    (tmp_path / "empty").write_text("\n")
    run_environment["PHT_TOKEN_FILE"] = str(tmp_path / "empty")
    with pytest.raises(ConfigurationError, match="empty"):
        TrainEnvironment.from_environ(run_environment)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_attempt_must_be_positive(run_environment: dict[str, str], value: str) -> None:
    run_environment["PHT_ATTEMPT"] = value
    with pytest.raises(ConfigurationError, match="PHT_ATTEMPT"):
        TrainEnvironment.from_environ(run_environment)


def test_api_url_must_be_http(run_environment: dict[str, str]) -> None:
    run_environment["PHT_STATION_API_URL"] = "file:///etc/passwd"
    with pytest.raises(ConfigurationError, match="http"):
        TrainEnvironment.from_environ(run_environment)


def test_parameters_are_type_checked(run_environment: dict[str, str]) -> None:
    env = TrainEnvironment.from_environ(run_environment)
    assert env.parameter("timePoints", list) == [365, 730]
    assert env.parameter("epochs", int, 5) == 5
    with pytest.raises(ParameterError, match="'label' must be of type int"):
        env.parameter("label", int)
    with pytest.raises(ParameterError, match="'absent' is required"):
        env.parameter("absent", str)


def test_ints_are_accepted_as_floats_but_booleans_are_not_numbers() -> None:
    env_parameters = {"rate": 1, "flag": True}
    from pht_train.environments import get_parameter

    assert get_parameter(env_parameters, "rate", float, 0.5) == 1.0
    assert isinstance(get_parameter(env_parameters, "rate", float, 0.5), float)
    with pytest.raises(ParameterError, match="not bool"):
        get_parameter(env_parameters, "flag", int, 0)


def test_named_queries_are_read_by_name(tmp_path: Path) -> None:
    (tmp_path / "survival.rq").write_text("SELECT * WHERE { ?s ?p ?o }")
    (tmp_path / "counts.rq").write_text("ASK { ?s ?p ?o }")
    assert load_queries(tmp_path) == {
        "counts": "ASK { ?s ?p ?o }",
        "survival": "SELECT * WHERE { ?s ?p ?o }",
    }
    assert load_query(tmp_path, "survival").startswith("SELECT")
    with pytest.raises(QueryNotFound, match=r"declared: counts, survival"):
        load_query(tmp_path, "other")
    with pytest.raises(QueryNotFound, match="not a query name"):
        load_query(tmp_path, "../token")
