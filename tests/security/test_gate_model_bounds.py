"""The algorithm author against the gate's own cost: model files built to freeze the station.

The search for pickle runs while the result archive records a completion, under the lock every
other train's state poll waits on. A file that makes the gate decompress gigabytes or walk
millions of opcodes in pure Python would stop result handling station-wide. Each test here builds
such a file and asserts that it is blocked, by a named rule, well within a few seconds, while
honest models are judged as before.
"""

import base64
import hashlib
import io
import json
import struct
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from security_gate_kit import COHORT, REVIEW_MOMENT, REVIEWED_DIGEST, REVIEWED_IMAGE, example_policy

from pht_contract.manifests import ModelFile, ResultManifest
from pht_contract.trains import ReleaseState
from pht_contract.wire import RunCompletion
from pht_station_api.disclosure import Outcome, Rule, evaluate
from pht_station_api.disclosure.formats import MAX_PICKLE_OPCODES, MAX_ZIP_ENTRIES
from pht_station_api.provenance import ProvenanceChain
from pht_station_api.results import ResultArchive, TrainContext

POLICY = example_policy(reviewed=True)
#: Generous: the bounded reads take well under a second; the unbounded ones took tens.
SECONDS = 5.0
MIB = 1024 * 1024


def _wire(data: bytes, name: str = "model.npy", fmt: str = "npy") -> dict[str, Any]:
    return {
        "name": name,
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "sizeBytes": len(data),
        "dataBase64": base64.b64encode(data).decode(),
    }


def _judge(*files: bytes, fmt: str = "npy") -> tuple[Outcome, Rule | None, float]:
    models = [ModelFile.model_validate(_wire(d, f"m{i}.{fmt}", fmt)) for i, d in enumerate(files)]
    started = time.monotonic()
    decision = evaluate(
        ResultManifest(models=models),
        POLICY,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    return decision.outcome, decision.rule, time.monotonic() - started


def _listed_many_times(entries: int, member: bytes, name: str = "a") -> bytes:
    """One deflated member whose central directory entry is repeated ``entries`` times."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(name, member)
    data = out.getvalue()
    end = data.rindex(b"PK\x05\x06")
    size, offset = struct.unpack_from("<LL", data, end + 12)
    listing = data[offset : offset + size] * entries
    count = min(entries, 0xFFFF)
    record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(listing), offset, 0)
    return data[:offset] + listing + record


def _renamed_copies(entries: int, member: bytes) -> bytes:
    """The same compressed bytes listed under ``entries`` different names (same length)."""
    data = _listed_many_times(entries, member, name="a0")
    start = data.index(b"PK\x01\x02")
    entry = len(data[start:]) - 22
    each = entry // entries
    parts = [data[:start]]
    for i in range(entries):
        chunk = data[start + i * each : start + (i + 1) * each]
        parts.append(chunk[:-2] + f"{i % 100:02d}".encode()[-2:])
    parts.append(data[start + entries * each :])
    return b"".join(parts)


def _distinct_members(count: int, member: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for i in range(count):
            archive.writestr(f"part{i}", member)
    return out.getvalue()


NONES = b"N" * (64 * MIB)  # pickle NONE opcodes and no STOP: a stream with no end


def test_one_member_listed_165000_times_is_blocked_within_seconds_by_the_store(
    tmp_path: Path,
) -> None:
    bomb = _listed_many_times(165_000, NONES)
    raw = json.dumps({"models": [_wire(bomb)]}).encode()
    assert len(raw) <= POLICY.max_result_bytes  # it fits the upload cap
    context = TrainContext(
        uid="uid-bomb",
        namespace="research",
        name="bomb",
        requester="mallory",
        organisation="maastro",
        disclosure=POLICY,
        retention_days=7,
        patients=frozenset(f"p{i}" for i in range(COHORT)),
        image="evil@" + REVIEWED_DIGEST,
    )
    store, chain = ResultArchive(tmp_path / "results"), ProvenanceChain.open(None, None)
    store.upload(context, raw, chain)
    started = time.monotonic()
    completion = store.complete(
        context, RunCompletion(job_succeeded=True, reason="RunCompleted"), COHORT, chain
    )
    assert time.monotonic() - started < SECONDS
    assert completion.record.release == ReleaseState.BLOCKED
    assert completion.record.rule == Rule.MODEL_TOO_LARGE_TO_READ.value


def test_more_entries_than_the_bound_are_refused_before_any_is_read() -> None:
    zipped = _listed_many_times(MAX_ZIP_ENTRIES + 1, b"x")
    outcome, rule, seconds = _judge(zipped)
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.MODEL_TOO_LARGE_TO_READ)
    assert seconds < SECONDS


@pytest.mark.parametrize("entries", [2, 3, 500])
def test_a_member_listed_twice_under_one_name_is_a_malformed_archive(entries: int) -> None:
    outcome, rule, seconds = _judge(_listed_many_times(entries, NONES))
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.MALFORMED_MODEL_ARCHIVE)
    assert seconds < SECONDS


def test_one_member_listed_under_many_names_is_a_malformed_archive() -> None:
    zipped = _renamed_copies(50, NONES)
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        names = [info.filename for info in archive.infolist()]
    assert len(set(names)) == 50  # distinct names, one set of compressed bytes
    outcome, rule, seconds = _judge(zipped)
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.MALFORMED_MODEL_ARCHIVE)
    assert seconds < SECONDS


def test_distinct_members_of_endless_opcodes_stop_at_the_opcode_bound() -> None:
    # three honest-looking members of 8 MiB each: the walk alone took eleven seconds
    outcome, rule, seconds = _judge(_distinct_members(3, b"N" * (8 * MIB)))
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.MODEL_TOO_LARGE_TO_READ)
    assert seconds < SECONDS


def test_members_decompressing_past_the_total_bound_are_refused() -> None:
    # zero bytes are no opcode, so only the decompressed total can stop these
    outcome, rule, seconds = _judge(_distinct_members(2, b"\x00" * (33 * MIB)))
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.MODEL_TOO_LARGE_TO_READ)
    assert seconds < SECONDS


def test_a_long_opcode_stream_outside_any_zip_is_refused_not_walked() -> None:
    outcome, rule, seconds = _judge(b"N" * (7 * MIB))
    assert (outcome, rule) == (Outcome.BLOCKED, Rule.MODEL_TOO_LARGE_TO_READ)
    assert seconds < SECONDS


def test_sixteen_files_share_one_budget() -> None:
    # each file alone stays under the opcode bound; together they do not
    each = b"N" * (MAX_PICKLE_OPCODES // 2)
    models = [ModelFile.model_validate(_wire(each, f"m{i}.npy")) for i in range(16)]
    started = time.monotonic()
    decision = evaluate(
        ResultManifest(models=models),
        POLICY,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    assert time.monotonic() - started < SECONDS
    assert decision.outcome == Outcome.BLOCKED
    rules = [f.rule for f in decision.findings if f.where and f.where.startswith("m")]
    assert rules[0] == Rule.UNREADABLE_MODEL  # the first file alone is within the bound
    assert rules[1:] == [Rule.MODEL_TOO_LARGE_TO_READ] * 15


def test_honest_models_are_judged_as_before() -> None:
    array = io.BytesIO()
    np.save(array, np.arange(4096, dtype="<f4").reshape(64, 64))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    tensors = struct.pack("<Q", len(header)) + header + np.ones(2, dtype="<f4").tobytes()
    for data, fmt in (
        (array.getvalue(), "npy"),
        (tensors, "safetensors"),
        (b'{"coef": [[0.5, -1.25], [3, 4]], "intercept": 0.1}', "json"),
    ):
        outcome, rule, seconds = _judge(data, fmt=fmt)
        assert (outcome, rule) == (Outcome.HELD, Rule.MANUAL_RELEASE_REQUIRED), fmt
        assert seconds < SECONDS
    released = POLICY.model_copy(update={"manual_release_for_models": False})
    model = ModelFile.model_validate(_wire(array.getvalue()))
    decision = evaluate(
        ResultManifest(models=[model]),
        released,
        audited_cohort=COHORT,
        image=REVIEWED_IMAGE,
        at=REVIEW_MOMENT,
    )
    assert decision.outcome == Outcome.RELEASED
