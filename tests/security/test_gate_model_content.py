"""The algorithm author against automatic model release: records riding along with a model.

Where a steward lets models leave without a look (``manualReleaseForModels: false``) for a
reviewed image, a JSON "model" could be the patients' records themselves, and a safetensors
``__metadata__`` a page of free text beside honest tensors. Such files are held for a steward.
"""

import base64
import hashlib
import json
import struct
import time

import numpy as np
import pytest
from security_gate_kit import COHORT, PATIENT_IDS, REVIEW_MOMENT, REVIEWED_IMAGE, example_policy

from pht_contract.manifests import ModelFile, ResultManifest
from pht_station_api.disclosure import Outcome, Rule, evaluate

AUTO = example_policy(reviewed=True).model_copy(update={"manual_release_for_models": False})


def _decide(data: bytes, fmt: str) -> tuple[Outcome, Rule | None, str]:
    model = ModelFile.model_validate(
        {
            "name": f"model.{fmt}",
            "format": fmt,
            "sha256": hashlib.sha256(data).hexdigest(),
            "sizeBytes": len(data),
            "dataBase64": base64.b64encode(data).decode(),
        }
    )
    decision = evaluate(
        ResultManifest(models=[model]),
        AUTO,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    described = " ".join(f.describe() for f in decision.findings)
    return decision.outcome, decision.rule, described


def _safetensors(metadata: dict[str, str] | None) -> bytes:
    header: dict[str, object] = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + np.ones(2, dtype="<f4").tobytes()


RECORDS = [{"id": pid, "age": 40 + i % 47, "stage": "IIIb"} for i, pid in enumerate(PATIENT_IDS)]


@pytest.mark.parametrize(
    "content",
    [
        RECORDS,
        {"weights": [0.5, 1.5], "notes": "LUNG1-001 age 71 T3N2"},
        {"weights": [0.5, None]},
        {"weights": [True, 1.0]},
        {"LUNG1-001 age 71": [1.0]},  # a key that is no identifier
        {f"k{i}": 1.0 for i in range(300)},  # too many distinct keys
        [2**60],  # beyond a double's exact integers
        [1.0, [2.0]],  # an array of numbers and arrays both
        [[0.5]] * 100_001,  # more arrays than the walk visits
        b"[1e999]",  # valid JSON that Python reads as infinity
    ],
)
def test_a_json_model_with_anything_but_numbers_is_held(content: object) -> None:
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    outcome, rule, described = _decide(data, "json")
    assert (outcome, rule) == (Outcome.HELD, Rule.MODEL_FREE_CONTENT)
    assert "LUNG1" not in described


def test_the_numbers_check_costs_little_more_than_parsing() -> None:
    tiny_arrays = b"[" + b",".join([b"[0]"] * 1_800_000) + b"]"
    long_array = b"[" + b",".join([b"0"] * 3_700_000) + b"]"
    started = time.monotonic()
    # 1.8 million one-number arrays: refused at the container bound, not walked one by one
    assert _decide(tiny_arrays, "json")[:2] == (Outcome.HELD, Rule.MODEL_FREE_CONTENT)
    # 3.7 million numbers in one array: checked by C loops
    assert _decide(long_array, "json")[:2] == (Outcome.RELEASED, None)
    assert time.monotonic() - started < 20.0  # generous: shared CI cores; parsing dominates


def test_long_safetensors_metadata_is_held() -> None:
    notes = "; ".join(f"{pid} age {40 + i % 47}" for i, pid in enumerate(PATIENT_IDS[:40]))
    outcome, rule, described = _decide(
        _safetensors({"format": "pt", "notes": notes}), "safetensors"
    )
    assert (outcome, rule) == (Outcome.HELD, Rule.MODEL_FREE_CONTENT)
    assert "LUNG1" not in described


def test_numbers_only_models_and_short_metadata_still_leave_automatically() -> None:
    honest_json = {"layer_1.weight": [[0.5, -1.25], [3, 4]], "layer_1.bias": [0.1, 0]}
    for data, fmt in (
        (json.dumps(honest_json).encode(), "json"),
        (b"[[1, 2.5], [3, 4e-3]]", "json"),
        (json.dumps([[i / 7 for i in range(64)]] * 1000).encode(), "json"),
        (_safetensors({"format": "pt"}), "safetensors"),
        (_safetensors(None), "safetensors"),
    ):
        assert _decide(data, fmt)[:2] == (Outcome.RELEASED, None), data[:40]
