"""The manifest builder checks what the station's contract checks (and a little more)."""

import base64
import hashlib
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pht_contract.manifests import ResultManifest as ContractManifest
from pht_train import ManifestError, ResultManifest, category_label, count, group, statistic
from pht_train.manifests import Column


def contract_accepts(manifest: ResultManifest) -> ContractManifest:
    return ContractManifest.model_validate_json(manifest.to_json())


def test_model_files_carry_their_digest_and_size() -> None:
    manifest = ResultManifest()
    data = b"\x93NUMPY\x01\x00" + bytes(50)
    model = manifest.add_model("weights.npy", data, "npy")
    assert model.sha256 == hashlib.sha256(data).hexdigest()
    assert model.size_bytes == len(data)
    parsed = contract_accepts(manifest).models[0]
    assert base64.b64decode(parsed.data_base64) == data
    assert parsed.sha256 == model.sha256


def test_records_become_rows_in_column_order() -> None:
    manifest = ResultManifest()
    manifest.add_records(
        "by_sex",
        [group("sex"), count("patients")],
        [{"patients": 12, "sex": "female"}, {"sex": "male", "patients": np.int64(30)}],
        cohort_size=42,
    )
    table = contract_accepts(manifest).tables[0]
    assert table.rows == [["female", 12], ["male", 30]]
    assert type(manifest.wire()["tables"][0]["rows"][1][1]) is int
    with pytest.raises(ManifestError, match=r"no value for \['patients'\]"):
        manifest.add_records("other", [group("sex"), count("patients")], [{"sex": "x"}], 1)


# (name, columns, rows, cohort size, the SDK's complaint, whether the contract refuses it too).
# Where the contract accepts, the SDK is stricter on purpose: a count of 2.5 or -1 patients,
# a duplicated column or a NaN is a bug in the algorithm, better caught before the upload.
BAD_TABLES: list[tuple[str, list[Column], list[list[Any]], Any, str, bool]] = [
    ("Bad Name", [group("a")], [], 0, "lower-case", True),
    ("t", [], [], 0, "between 1 and", True),
    ("t", [group("a"), group("a")], [], 0, "unique", False),
    ("t", [group("A")], [], 0, "lower-case", True),
    ("t", [group("a"), count("n")], [["x"]], 0, "1 cells", True),
    ("t", [count("n")], [["five"]], 0, "non-negative integer", True),
    ("t", [count("n")], [[-1]], 0, "non-negative integer", False),
    ("t", [count("n")], [[2.5]], 0, "non-negative integer", False),
    ("t", [count("n")], [[True]], 0, "non-negative integer", False),
    ("t", [statistic("s")], [["0.5"]], 0, "numbers only", True),
    ("t", [statistic("s")], [[math.nan]], 0, "finite", False),
    ("t", [statistic("s")], [[math.inf]], 0, "finite", False),
    ("t", [group("a")], [["=cmd|' /C calc'!A0"]], 0, "a label is", True),
    ("t", [group("a")], [["x" * 65]], 0, "a label is", True),
    ("t", [group("a")], [["LUNG1-001 died on 2019-01-01 #note"]], 0, "a label is", True),
    ("t", [group("a")], [["a"]], -1, "cohortSize", True),
]


@pytest.mark.parametrize(("name", "columns", "rows", "cohort", "complaint", "refused"), BAD_TABLES)
def test_bad_tables_are_refused(
    name: str,
    columns: list[Column],
    rows: list[list[Any]],
    cohort: Any,
    complaint: str,
    refused: bool,
) -> None:
    with pytest.raises(ManifestError, match=complaint):
        ResultManifest().add_table(name, columns, rows, cohort)
    document = {
        "tables": [
            {
                "name": name,
                "columns": [{"name": c.name, "role": c.role} for c in columns],
                "rows": rows,
                "cohortSize": cohort,
            }
        ]
    }
    if refused:
        with pytest.raises(ValidationError):
            ContractManifest.model_validate_json(json.dumps(document, allow_nan=True))


def test_statistics_models_and_messages_are_bounded() -> None:
    manifest = ResultManifest()
    manifest.add_statistic("n_patients", np.float64(3.0), 3)
    with pytest.raises(ManifestError, match="exists already"):
        manifest.add_statistic("n_patients", 1.0, 1)
    with pytest.raises(ManifestError, match="non-negative"):
        manifest.add_statistic("x", 1.0, -1)
    with pytest.raises(ManifestError, match="finite"):
        manifest.add_statistic("y", math.nan, 1)
    with pytest.raises(ManifestError, match="format"):
        manifest.add_model("model.pkl", b"\x80\x04", "pickle")  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="file name"):
        manifest.add_model("../model.json", b"{}", "json")
    with pytest.raises(ManifestError, match="at most 2048"):
        manifest.add_message("x" * 2049)
    for _ in range(16):
        manifest.add_message("ok")
    with pytest.raises(ManifestError, match="at most 16"):
        manifest.add_message("one too many")
    contract_accepts(manifest)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_plots_are_png_files_with_a_title_and_bounded() -> None:
    manifest = ResultManifest()
    manifest.add_plot("survival", "Overall survival by stage (n=60)", PNG)
    assert manifest.wire()["plots"] == [
        {
            "name": "survival",
            "title": "Overall survival by stage (n=60)",
            "dataBase64": base64.b64encode(PNG).decode(),
        }
    ]
    assert not manifest.empty
    with pytest.raises(ManifestError, match="exists already"):
        manifest.add_plot("survival", "Again", PNG)
    with pytest.raises(ManifestError, match=r"lower-case identifier|plots"):
        manifest.add_plot("../survival.png", "Path", PNG)
    with pytest.raises(ManifestError, match="title"):
        manifest.add_plot("markup", "<b>bold</b>", PNG)
    with pytest.raises(ManifestError, match="a plot is a PNG file"):
        manifest.add_plot("svg", "Vector", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(ManifestError, match="larger than"):
        manifest.add_plot("huge", "Huge", PNG + b"\x00" * (8 * 1024 * 1024))
    sixteen_bit = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(8) + b"\x10\x06" + bytes(3)
    with pytest.raises(ManifestError, match="16-bit samples"):
        manifest.add_plot("deep", "Deep", sixteen_bit)
    for index in range(3):
        manifest.add_plot(f"p{index}", f"Plot {index}", PNG)
    with pytest.raises(ManifestError, match="at most 4 plots"):
        manifest.add_plot("p9", "One too many", PNG)
    contract_accepts(manifest)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#C20197", "C20197"),
        ("http://www.cancerdata.org/roo/overallsurvivaldays", "overallsurvivaldays"),
        ("squamous cell carcinoma", "squamous cell carcinoma"),
        ("IIIa", "IIIa"),
        ("_odd#label", "x_odd_label"),
        ("", "x"),
        (3, "3"),
    ],
)
def test_category_label(value: object, label: str) -> None:
    assert category_label(value) == label


labels = st.text(min_size=0, max_size=80)
numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True))
cells = st.one_of(st.none(), labels, numbers, st.booleans())
roles = st.sampled_from(["Group", "Count", "Statistic"])
names = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.text(max_size=5))


@settings(max_examples=300, deadline=None)
@given(
    name=names,
    columns=st.lists(st.tuples(names, roles), min_size=0, max_size=4),
    rows=st.lists(st.lists(cells, min_size=0, max_size=4), max_size=4),
    cohort=st.integers(-2, 1000),
)
def test_whatever_the_sdk_accepts_the_contract_accepts(
    name: str,
    columns: list[tuple[str, Any]],
    rows: list[list[Any]],
    cohort: int,
) -> None:
    manifest = ResultManifest()
    try:
        manifest.add_table(name, [Column(n, r) for n, r in columns], rows, cohort)
    except ManifestError:
        return
    contract_accepts(manifest)
