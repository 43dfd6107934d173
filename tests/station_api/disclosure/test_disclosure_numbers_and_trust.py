"""Numbers as they may leave, labels by domain, and which images skip the steward."""

import math

import pytest

from pht_contract.manifests import ResultTable
from pht_contract.policies import DisclosurePolicy, ReleasableVariable
from pht_station_api.disclosure.labels import labels_releasable, releasable
from pht_station_api.disclosure.numbers import MAX_EXACT_INTEGER, as_double, round_significant
from pht_station_api.disclosure.trust import image_digest, reviewed_for_auto_release

DIGEST = "sha256:" + "1" * 64


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5),
        (7, 7.0),
        (MAX_EXACT_INTEGER, float(MAX_EXACT_INTEGER)),
        (MAX_EXACT_INTEGER + 1, None),
        (-(10**4000), None),
        (math.inf, None),
        (math.nan, None),
        (True, None),
        ("12", None),
    ],
)
def test_only_finite_doubles_are_numbers(value: object, expected: float | None) -> None:
    assert as_double(value) == expected


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [(0.123456789, 6, 0.123457), (123456789.0, 3, 1.23e8), (-0.0, 6, 0.0), (5e-324, 2, 4.9e-324)],
)
def test_rounding_to_significant_digits(value: float, digits: int, expected: float) -> None:
    assert round_significant(value, digits) == expected


def test_labels_come_from_the_domain() -> None:
    stage = ReleasableVariable(name="stage", values=["I", "II"])
    days = ReleasableVariable(name="days", minimum=0, maximum=3650)
    assert releasable(stage, "I") and releasable(stage, None)
    assert not releasable(stage, "LUNG1-001") and not releasable(stage, 1)
    assert releasable(days, 365) and releasable(days, 365.0)
    # numeric labels are whole numbers: fractional digits would leave unrounded
    assert not releasable(days, 365.5) and not releasable(days, 1234.5678901234567)
    assert not releasable(days, 3651) and not releasable(days, "365") and not releasable(days, True)
    table = ResultTable.model_validate(
        {
            "name": "t",
            "columns": [{"name": "sex", "role": "Group"}, {"name": "n", "role": "Count"}],
            "rows": [["male", 40]],
            "cohortSize": 40,
        }
    )
    assert not labels_releasable(table, DisclosurePolicy(releasable_variables=[stage, days]))


def test_a_numeric_range_needs_both_ends() -> None:
    with pytest.raises(ValueError, match="both minimum and maximum"):
        ReleasableVariable(name="days", minimum=0)
    with pytest.raises(ValueError, match="must not exceed"):
        ReleasableVariable(name="days", minimum=5, maximum=1)


@pytest.mark.parametrize(
    ("image", "digest"),
    [
        ("registry.example.org/km@" + DIGEST, DIGEST),
        ("registry.example.org/km:1.0@" + DIGEST, DIGEST),
        ("registry.example.org/km:1.0", None),
        ("registry.example.org/km@sha256:" + "A" * 64, None),
        ("registry.example.org/km@sha256:" + "1" * 63, None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_pinned_digest_identifies_reviewed_code(
    image: str | None, digest: str | None
) -> None:
    assert image_digest(image) == digest
    policy = DisclosurePolicy(auto_release_image_digests=[DIGEST])
    assert reviewed_for_auto_release(policy, image) == (digest == DIGEST)
    assert not reviewed_for_auto_release(DisclosurePolicy(), image)
