"""Properties of the gate over generated manifests, policies, audits and ledgers.

1. Nothing that violates the policy is ever released automatically.
2. No crafted input (random bytes, random JSON, random model bytes) crashes the gate.
"""

import base64
import json
import math
from datetime import datetime
from typing import Any

import numpy as np
from disclosure_samples import (
    REVIEW_MOMENT,
    TRUSTED_DIGEST,
    TRUSTED_IMAGE,
    image_review,
    model_file,
    npy_bytes,
    onnx_bytes,
    pickle_bytes,
    safetensors_bytes,
    torch_like_zip,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pht_contract.manifests import Column, ResultManifest, ResultTable, Statistic
from pht_contract.policies import DisclosurePolicy
from pht_station_api.disclosure import Outcome, Rule, evaluate, evaluate_bytes
from pht_station_api.disclosure.formats import SNIFFERS, Reading, is_pickle, read_model
from pht_station_api.disclosure.ledgers import differs_too_little
from pht_station_api.disclosure.models import decode_model, review_model
from pht_station_api.disclosure.numbers import round_significant

MODEL_BLOBS = [
    (safetensors_bytes(), "safetensors"),
    (onnx_bytes(), "onnx"),
    (npy_bytes(np.arange(4.0)), "npy"),
    (npy_bytes(np.array([None], dtype=object)), "npy"),
    (b'{"w": [1, 2]}', "json"),
    (pickle_bytes(), "npy"),
    (pickle_bytes(), "pickle"),
    (torch_like_zip(), "safetensors"),
    (b"\x08\x01garbage", "onnx"),
]


def counts(cohort: int) -> st.SearchStrategy[int | float | None]:
    """Mostly plausible counts for a cohort; sometimes small, empty, negative or not finite."""
    plausible = st.integers(min_value=0, max_value=max(cohort, 0))
    small = st.integers(min_value=0, max_value=8)
    odd = st.one_of(
        st.integers(min_value=-3, max_value=cohort + 5), st.sampled_from([math.nan, math.inf, 2.5])
    )
    return st.integers(min_value=0, max_value=99).flatmap(
        lambda dice: (
            plausible if dice < 80 else small if dice < 94 else st.none() if dice < 98 else odd
        )
    )


@st.composite
def tables(draw: st.DrawFn, audited: int) -> ResultTable:
    """Tables built without schema validation, so odd counts (negative, NaN, fractional) that
    the manifest schema refuses still reach the gate: it must not rely on the schema alone."""
    cohort = draw(
        st.one_of(
            st.integers(min_value=0, max_value=max(audited, 0)),
            st.integers(min_value=0, max_value=audited + 10),
        )
    )
    n_counts = draw(st.integers(min_value=0, max_value=3))
    columns = [Column(name="grp", role="Group")]
    columns += [Column(name=f"c{i}", role="Count") for i in range(n_counts)]
    columns += [Column(name="stat", role="Statistic")]
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "stage IIIb", "LUNG1-001 male T3N2 died 2011-03-04"]),
                st.lists(counts(cohort), min_size=n_counts, max_size=n_counts),
                st.floats(allow_nan=False, allow_infinity=False),
            ).map(lambda t: [t[0], *t[1], t[2]]),
            max_size=6,
        )
    )
    return ResultTable.model_construct(
        name=draw(st.sampled_from(["t", "stages", "km"])),
        kind=draw(st.sampled_from(["Aggregate", "Aggregate", "Aggregate", "RowLevel"])),
        columns=columns,
        rows=rows,
        cohort_size=cohort,
    )


@st.composite
def manifests(draw: st.DrawFn, audited: int) -> ResultManifest:
    safe = [b for b in MODEL_BLOBS if b[1] != "pickle"][:3]
    blobs = draw(
        st.one_of(
            st.just([]),
            st.lists(st.sampled_from(safe), max_size=2),
            st.lists(st.sampled_from(MODEL_BLOBS), max_size=2),
        )
    )
    models = [model_file(data, fmt, name=f"m{i}") for i, (data, fmt) in enumerate(blobs)]
    statistics = draw(
        st.lists(
            st.builds(
                Statistic,
                name=st.sampled_from(["mean_age", "median_os"]),
                value=st.floats(allow_nan=False, allow_infinity=False),
                n=st.integers(min_value=0, max_value=audited + 10),
            ),
            max_size=3,
        )
    )
    return ResultManifest.model_construct(
        tables=draw(st.lists(tables(audited), max_size=3)),
        statistics=statistics,
        models=models,
        messages=draw(st.sampled_from([[], [], [], ["note"]])),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ResultManifest, int | None]:
    audited = draw(st.one_of(st.integers(min_value=0, max_value=400), st.none()))
    return draw(manifests(400 if audited is None else audited)), audited


#: The labels the generated tables may use; the patient-like one is never releasable.
GROUP_VALUES = ["a", "b", "stage IIIb"] + [f"g{i}" for i in range(8)]
RELEASABLE = [{"name": "grp", "values": GROUP_VALUES}]

policies = st.builds(
    DisclosurePolicy,
    releasable_variables=st.just(RELEASABLE),
    reviewed_images=st.sampled_from(
        [
            [image_review(TRUSTED_DIGEST)],
            [image_review(TRUSTED_DIGEST)],
            [],
            # expired, dated in the future, or of another digest: none of them counts
            [image_review(TRUSTED_DIGEST, expires_at="2026-02-01T00:00:00Z")],
            [image_review(TRUSTED_DIGEST, reviewed_at="2026-04-01T00:00:00Z")],
            [image_review("sha256:" + "b" * 64)],
        ]
    ),
    significant_digits=st.integers(min_value=1, max_value=17),
    min_cohort=st.integers(min_value=1, max_value=30),
    min_cell_count=st.integers(min_value=1, max_value=20),
    small_cell_action=st.sampled_from(["Suppress", "Block"]),
    forbid_row_level=st.booleans(),
    allowed_model_formats=st.lists(
        st.sampled_from(["safetensors", "onnx", "npy", "json"]), unique=True, max_size=4
    ),
    manual_release_for_models=st.booleans(),
    manual_release_for_all=st.sampled_from([False, False, False, True]),
    differencing_threshold=st.integers(min_value=0, max_value=20),
)


def _is_number(cell: Any) -> bool:
    return isinstance(cell, int | float) and not isinstance(cell, bool)


def assert_tables_and_statistics_safe(
    out: ResultManifest, policy: DisclosurePolicy, audited: int
) -> None:
    """What "violating" means for tables and statistics, checked on what would leave."""
    k = policy.min_cell_count
    digits = policy.significant_digits
    labelled = derived = 0
    for table in out.tables:
        assert table.kind == "Aggregate"
        assert policy.min_cohort <= table.cohort_size <= audited
        # an aggregate says how many patients stand behind each row
        assert table.count_columns()
        shown = [row for row in table.rows if any(cell is not None for cell in row)]
        for row in shown:
            values = [row[i] for i in table.count_columns() if row[i] is not None]
            # a released row stands for somebody: some count is non-zero...
            assert any(_is_number(cell) and cell > 0 for cell in values)
            for cell in values:
                assert _is_number(cell) and math.isfinite(cell)
                # ...and every non-zero count reaches k (a zero beside it is fine)
                assert cell == 0 or policy.min_cell_count <= cell <= table.cohort_size
        # each shown row stands for at least k patients: no more rows than the cohort can fill
        assert len(shown) * policy.min_cell_count <= table.cohort_size
        # labels only from the releasable values; one row per group
        groups = [i for i, c in enumerate(table.columns) if c.role == "Group"]
        assert all(row[i] is None or row[i] in GROUP_VALUES for row in shown for i in groups)
        assert len({tuple(row[i] for i in groups) for row in shown}) == len(shown)
        # derived numbers are doubles with no more than the allowed significant digits
        statistics = [i for i, c in enumerate(table.columns) if c.role == "Statistic"]
        for row in shown:
            for i in statistics:
                cell = row[i]
                assert cell is None or (
                    isinstance(cell, float) and cell == round_significant(cell, digits)
                )
                derived += cell is not None
        labelled += len(shown)
    for statistic in out.statistics:
        assert policy.min_cell_count <= statistic.n <= audited
        assert statistic.value == round_significant(statistic.value, digits)
    # per result, not per table: rows and derived numbers the cohort can support
    assert labelled * k <= audited and labelled <= policy.max_labelled_rows_per_result
    assert (derived + len(out.statistics)) * k <= audited


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=scenarios(),
    policy=policies,
    earlier=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
    image=st.sampled_from([TRUSTED_IMAGE, TRUSTED_IMAGE, None, "registry.example.org/km:1.0"]),
    at=st.sampled_from([REVIEW_MOMENT, REVIEW_MOMENT, None]),
)
def test_no_violating_manifest_is_released(
    scenario: tuple[ResultManifest, int | None],
    policy: DisclosurePolicy,
    earlier: list[int],
    image: str | None,
    at: datetime | None,
) -> None:
    manifest, audited = scenario
    decision = evaluate(
        manifest, policy, audited_cohort=audited, released_cohorts=earlier, image=image, at=at
    )
    if decision.outcome != Outcome.RELEASED:
        assert decision.rule is not None
        return
    out = decision.released
    # only the result of an image with a review that counts now is released without a steward
    assert image == TRUSTED_IMAGE and at is not None
    assert any(r.digest == TRUSTED_DIGEST and r.counts_at(at) for r in policy.reviewed_images)
    # the cohort is audited and large enough
    assert audited is not None and audited >= policy.min_cohort
    # nothing a human must see first
    assert not out.messages and not policy.manual_release_for_all
    assert not (out.models and policy.manual_release_for_models)
    assert_tables_and_statistics_safe(out, policy, audited)
    for model in out.models:
        data = decode_model(model)
        assert data is not None and not is_pickle(data)
        assert model.format in policy.allowed_model_formats
        assert SNIFFERS[model.format](data)
        assert read_model(model.format, data) is Reading.MODEL  # no free content rides along
    assert not differs_too_little(decision.cohorts, earlier, policy.differencing_threshold)


@st.composite
def table_scenarios(draw: st.DrawFn) -> tuple[ResultManifest, int]:
    """Tables and statistics only, audited: most examples get as far as the table rules."""
    audited = draw(st.integers(min_value=20, max_value=400))
    manifest = draw(manifests(audited))
    return manifest.model_copy(update={"models": [], "messages": []}), audited


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=table_scenarios(),
    min_cell=st.integers(min_value=1, max_value=20),
    action=st.sampled_from(["Suppress", "Block"]),
)
def test_no_violating_table_is_released(
    scenario: tuple[ResultManifest, int], min_cell: int, action: str
) -> None:
    manifest, audited = scenario
    policy = DisclosurePolicy(
        min_cohort=10,
        min_cell_count=min_cell,
        small_cell_action=action,
        differencing_threshold=0,
        releasable_variables=RELEASABLE,
        reviewed_images=[image_review(TRUSTED_DIGEST)],
    )
    decision = evaluate(
        manifest, policy, audited_cohort=audited, image=TRUSTED_IMAGE, at=REVIEW_MOMENT
    )
    if decision.outcome == Outcome.RELEASED:
        assert_tables_and_statistics_safe(decision.released, policy, audited)
    else:
        assert decision.rule is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)

manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from(["pht.result/v1", "v2", 1]),
        "tables": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["t", "T!", ""]),
                    "kind": st.sampled_from(["Aggregate", "RowLevel", "Other"]),
                    "columns": st.lists(
                        st.fixed_dictionaries(
                            {
                                "name": st.sampled_from(["a", "b"]),
                                "role": st.sampled_from(["Group", "Count", "Statistic", "X"]),
                            }
                        ),
                        max_size=3,
                    ),
                    "rows": st.lists(st.lists(json_values, max_size=3), max_size=3),
                    "cohortSize": json_values,
                },
            ),
            max_size=2,
        ),
        "statistics": st.lists(json_values, max_size=2),
        "models": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.just("m.bin"),
                    "format": st.sampled_from(["npy", "onnx", "json", "safetensors", "zip"]),
                    "sha256": st.just("0" * 64),
                    "sizeBytes": st.integers(min_value=-1, max_value=64),
                    "dataBase64": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
                    | st.text(max_size=10),
                }
            ),
            max_size=2,
        ),
        "messages": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.one_of(
        st.binary(max_size=512), json_values.map(json.dumps), manifest_like.map(json.dumps)
    )
)
def test_crafted_input_never_crashes_the_gate(raw: bytes | str) -> None:
    data = raw.encode() if isinstance(raw, str) else raw
    decision = evaluate_bytes(data, DisclosurePolicy(), audited_cohort=100)
    assert decision.outcome in set(Outcome)
    assert decision.outcome == Outcome.RELEASED or decision.rule is not None


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=256),
        st.sampled_from([blob for blob, _ in MODEL_BLOBS]).flatmap(
            lambda blob: st.integers(min_value=0, max_value=len(blob)).map(lambda cut: blob[:cut])
        ),
        st.binary(max_size=64).map(lambda b: b"\x93NUMPY" + b),
        st.binary(max_size=64).map(lambda b: len(b).to_bytes(8, "little") + b),
        st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b),
    ),
    fmt=st.sampled_from(["safetensors", "onnx", "npy", "json", "pickle"]),
)
def test_crafted_model_bytes_never_crash_the_sniffers(data: bytes, fmt: str) -> None:
    findings = review_model(model_file(data, fmt), DisclosurePolicy())
    assert len(findings) == 1  # blocked for a named reason, or held for a steward


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    audited=st.integers(min_value=20, max_value=400),
    min_cell=st.integers(min_value=2, max_value=10),
)
def test_suppression_removes_every_small_cell_and_nothing_else(
    data: st.DataObject, audited: int, min_cell: int
) -> None:
    cohort = data.draw(st.integers(min_value=20, max_value=audited))
    rows = data.draw(
        st.lists(
            st.tuples(st.integers(min_value=0, max_value=cohort), st.floats(-1e6, 1e6)),
            min_size=1,
            max_size=8,
        )
    )
    table = ResultTable.model_validate(
        {
            "name": "t",
            "columns": [
                {"name": "grp", "role": "Group"},
                {"name": "n", "role": "Count"},
                {"name": "mean", "role": "Statistic"},
            ],
            "rows": [[f"g{i}", n, mean] for i, (n, mean) in enumerate(rows)],
            "cohortSize": cohort,
        }
    )
    policy = DisclosurePolicy(
        min_cell_count=min_cell,
        differencing_threshold=0,
        releasable_variables=RELEASABLE,
        reviewed_images=[image_review(TRUSTED_DIGEST)],
    )
    decision = evaluate(
        ResultManifest(tables=[table]),
        policy,
        audited_cohort=audited,
        image=TRUSTED_IMAGE,
        at=REVIEW_MOMENT,
    )
    shown = sum(1 for n, _ in rows if n >= min_cell)
    if shown * min_cell > cohort:
        assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.COUNTS_EXCEED_COHORT)
        return
    assert decision.outcome == Outcome.RELEASED
    for before, after in zip(table.rows, decision.released.tables[0].rows, strict=True):
        small = before[1] < min_cell  # type: ignore[operator]
        # a small or zero row is emptied throughout, its group label too
        label, n, mean = before
        assert after == (
            [None, None, None] if small else [label, n, round_significant(float(mean), 6)]  # type: ignore[arg-type]
        )
