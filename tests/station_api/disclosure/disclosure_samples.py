"""Builders for manifests and model files the disclosure tests share (real bytes, no mocks)."""

import base64
import hashlib
import io
import json
import pickle
import struct
import zipfile
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pht_contract.manifests import Column, ModelFile, ResultManifest, ResultTable


def stage_table(
    counts: list[int], cohort: int | None = None, kind: str = "Aggregate"
) -> ResultTable:
    """A stage-by-count table with a mean-age statistic column."""
    return ResultTable.model_validate(
        {
            "name": "stages",
            "kind": kind,
            "columns": [
                {"name": "stage", "role": "Group"},
                {"name": "patients", "role": "Count"},
                {"name": "mean_age", "role": "Statistic"},
            ],
            "rows": [[f"stage {i}", c, 60.5 + i] for i, c in enumerate(counts)],
            "cohortSize": sum(counts) if cohort is None else cohort,
        }
    )


def unchecked_table(counts: list[float], cohort: int) -> ResultTable:
    """A table that skipped schema validation: the gate must not rely on the schema alone."""
    return ResultTable.model_construct(
        name="stages",
        kind="Aggregate",
        columns=[Column(name="stage", role="Group"), Column(name="patients", role="Count")],
        rows=[[f"stage {i}", c] for i, c in enumerate(counts)],
        cohort_size=cohort,
    )


def model_file(data: bytes, fmt: str, name: str = "model.bin") -> ModelFile:
    return ModelFile.model_validate(
        {
            "name": name,
            "format": fmt,
            "sha256": hashlib.sha256(data).hexdigest(),
            "sizeBytes": len(data),
            "dataBase64": base64.b64encode(data).decode(),
        }
    )


def manifest(**fields: Any) -> ResultManifest:
    return ResultManifest(**fields)


def safetensors_bytes() -> bytes:
    payload = np.arange(6, dtype="<f4").tobytes()
    header = json.dumps(
        {
            "weights": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, len(payload)]},
            "__metadata__": {"format": "pt"},
        }
    ).encode()
    return struct.pack("<Q", len(header)) + header + payload


def _field(number: int, wire: int) -> bytes:
    return bytes([number << 3 | wire])


def onnx_bytes() -> bytes:
    """A minimal ``ModelProto``: ir_version 8, producer name, an (empty-named) graph, opset."""
    graph = _field(2, 2) + bytes([1]) + b"g"  # GraphProto.name = "g"
    opset = _field(2, 0) + bytes([17])  # OperatorSetIdProto.version = 17
    return (
        _field(1, 0)
        + bytes([8])
        + _field(2, 2)
        + bytes([4])
        + b"test"
        + _field(7, 2)
        + bytes([len(graph)])
        + graph
        + _field(8, 2)
        + bytes([len(opset)])
        + opset
    )


def npy_bytes(array: Any) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def pickle_bytes() -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0, 3.0]}, protocol=4)


def torch_like_zip() -> bytes:
    """The layout of a ``torch.save`` file: a zip whose ``data.pkl`` is a pickle."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes())
        archive.writestr("archive/version", "3\n")
    return out.getvalue()


#: An image a steward reviewed (the policies below record a review of its digest).
TRUSTED_DIGEST = "sha256:" + "a" * 64
TRUSTED_IMAGE = "registry.example.org/pht/trains/km@" + TRUSTED_DIGEST
#: Patient-like labels: what an attacker would put in a Group column.
PATIENT_LABELS = [f"LUNG1-{i:03d} male T3N2 died 2011-03-{i % 28 + 1:02d}" for i in range(1, 30)]
RELEASABLE: list[dict[str, Any]] = [
    {"name": "stage", "values": [f"stage {i}" for i in range(10)] + ["I", "II", "IIIa", "IIIb"]},
    {"name": "group", "minimum": 0, "maximum": 1000},
    {"name": "days", "minimum": 0, "maximum": 36525},
    # Releasable here only so that the suppression tests can show such labels still vanish.
    {"name": "who", "values": [*PATIENT_LABELS, "All"]},
]


#: When the gate decides in these tests: inside every :func:`image_review`'s validity.
REVIEW_MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def image_review(
    digest: str,
    reviewer: str = "steward@station.local",
    reviewed_at: str = "2026-01-05T09:00:00Z",
    expires_at: str = "2026-12-31T09:00:00Z",
) -> dict[str, Any]:
    """A steward's recorded review of ``digest``, counting at :data:`REVIEW_MOMENT`."""
    return {
        "digest": digest,
        "reviewer": reviewer,
        "reviewedAt": reviewed_at,
        "expiresAt": expires_at,
        "notes": "survival by stage only; no rows, no free text",
    }


def gate_policy(trusted: bool = True, **fields: Any) -> Any:
    """A policy whose labels cover the samples and that trusts ``TRUSTED_IMAGE`` by default."""
    from pht_contract.policies import DisclosurePolicy

    base: dict[str, Any] = {"releasable_variables": RELEASABLE}
    if trusted:
        base["reviewed_images"] = [image_review(TRUSTED_DIGEST)]
    return DisclosurePolicy.model_validate({**base, **fields})
