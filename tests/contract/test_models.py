"""Quantities, hashes, the result manifest and wire models behave as their users rely on."""

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from pht_contract.hashing import canonical_json, spec_hash, token_hash
from pht_contract.manifests import ResultManifest
from pht_contract.quantities import QuantityError, parse_quantity
from pht_contract.trains import Train


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("4Gi", Decimal(4 * 2**30)),
        ("1e3", Decimal(1000)),
        ("1.5G", Decimal(1_500_000_000)),
    ],
)
def test_quantities(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_bad_quantity() -> None:
    with pytest.raises(QuantityError):
        parse_quantity("lots")


def test_spec_hash_ignores_suspend_only(km_train: dict[str, Any]) -> None:
    base = Train.model_validate(km_train).spec
    suspended = Train.model_validate(
        {**km_train, "spec": {**km_train["spec"], "suspend": True}}
    ).spec
    assert spec_hash(base) == spec_hash(suspended)
    changed = copy.deepcopy(km_train)
    changed["spec"]["retries"] = 1
    assert spec_hash(Train.model_validate(changed).spec) != spec_hash(base)


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})


def test_token_hash_is_not_the_token() -> None:
    assert token_hash("secret") != "secret" and len(token_hash("secret")) == 64


def _table(**changes: Any) -> dict[str, Any]:
    table = {
        "name": "by_stage",
        "columns": [{"name": "stage", "role": "Group"}, {"name": "patients", "role": "Count"}],
        "rows": [["I", 12], ["II", 3]],
        "cohortSize": 15,
    }
    table.update(changes)
    return table


def test_manifest_accepts_typed_tables() -> None:
    manifest = ResultManifest.model_validate({"tables": [_table()]})
    assert manifest.tables[0].count_columns() == [1]


@pytest.mark.parametrize(
    "bad",
    [
        {"tables": [_table(rows=[["I"]])]},
        {"tables": [_table(rows=[["I", "twelve"]])]},
        {
            "tables": [
                _table(
                    rows=[
                        [
                            "a long free text sentence that goes on and on; with punctuation!? "
                            * 2,
                            1,
                        ]
                    ]
                )
            ]
        },
        {"tables": [_table()], "notes": "free text"},
        {"schemaVersion": "v0"},
        {"tables": [_table(rows=[["I", float("nan")]])]},
        {
            "tables": [
                _table(columns=[{"name": "a", "role": "Group"}, {"name": "a", "role": "Count"}])
            ]
        },
        {"statistics": [{"name": "mean_age", "value": float("inf"), "n": 10}]},
    ],
)
def test_manifest_refuses_free_form_content(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ResultManifest.model_validate(bad)
