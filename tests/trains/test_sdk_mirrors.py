"""The SDK's copies of contract names and bounds equal the contract's (it cannot import it)."""

import typing

import pytest

import pht_train.constants as sdk
from pht_contract import base, constants, manifests, wire
from pht_contract.trains import ProgressStage


@pytest.mark.parametrize(
    "name",
    [
        "ENV_API_URL",
        "ENV_TOKEN_FILE",
        "ENV_TRAIN_UID",
        "ENV_TRAIN_NAME",
        "ENV_ATTEMPT",
        "ENV_PARAMETERS",
        "ENV_QUERIES_DIR",
        "ENV_SCRATCH",
    ],
)
def test_environment_variable_names_match(name: str) -> None:
    assert getattr(sdk, name) == getattr(constants, name)


@pytest.mark.parametrize("name", ["SPARQL_PATH", "PROGRESS_PATH", "RESULT_PATH"])
def test_paths_match(name: str) -> None:
    assert getattr(sdk, name) == getattr(wire, name)


def test_progress_stages_match() -> None:
    assert [s.value for s in sdk.Stage] == [s.value for s in ProgressStage]


def test_manifest_patterns_match() -> None:
    assert sdk.RESULT_SCHEMA_VERSION == manifests.RESULT_SCHEMA_VERSION
    assert sdk.CATEGORY_LABEL == manifests.CATEGORY_LABEL
    assert sdk.IDENTIFIER == manifests.IDENTIFIER
    assert sdk.FILE_NAME == manifests.FILE_NAME
    assert sdk.PLOT_TITLE == manifests.PLOT_TITLE
    assert sdk.MAX_PLOT_BYTES == manifests.MAX_PLOT_BYTES
    assert sdk.SHA256_HEX == base.SHA256_HEX
    assert sdk.CAMEL_REASON == base.CAMEL_REASON


def _max_length(model: type, field: str) -> int:
    for item in model.model_fields[field].metadata:  # type: ignore[attr-defined]
        if hasattr(item, "max_length") and item.max_length is not None:
            return int(item.max_length)
    raise AssertionError(f"{model.__name__}.{field} has no max_length")


def test_manifest_bounds_match() -> None:
    assert _max_length(manifests.ResultManifest, "tables") == sdk.MAX_TABLES
    assert _max_length(manifests.ResultManifest, "statistics") == sdk.MAX_STATISTICS
    assert _max_length(manifests.ResultManifest, "models") == sdk.MAX_MODELS
    assert _max_length(manifests.ResultManifest, "messages") == sdk.MAX_MESSAGES
    assert _max_length(manifests.ResultManifest, "plots") == sdk.MAX_PLOTS
    assert _max_length(manifests.ResultTable, "columns") == sdk.MAX_COLUMNS
    assert _max_length(manifests.ResultTable, "rows") == sdk.MAX_ROWS
    assert _max_length(manifests.ModelFile, "data_base64") == sdk.MAX_MODEL_BASE64_CHARS
    manifests.ResultManifest(messages=["x" * sdk.MAX_MESSAGE_CHARS])
    with pytest.raises(ValueError, match="at most"):
        manifests.ResultManifest(messages=["x" * (sdk.MAX_MESSAGE_CHARS + 1)])
    assert _max_length(wire.RunCompletion, "reason") == sdk.MAX_REASON_CHARS


def test_roles_and_formats_are_the_contracts() -> None:
    roles = typing.get_args(manifests.Column.model_fields["role"].annotation)
    assert set(sdk.COLUMN_ROLES) == set(roles)
    formats = set(typing.get_args(manifests.ModelFile.model_fields["format"].annotation))
    # The SDK offers the safe formats only; the contract also names pickle, to refuse it.
    assert set(sdk.MODEL_FORMATS) == formats - {"pickle"}
