"""Numbers as they may leave, labels by domain, and which images skip the steward."""

import hashlib
import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from pht_contract.manifests import ResultTable
from pht_contract.policies import DisclosurePolicy, ImageReview, ReleasableVariable
from pht_station_api.disclosure.labels import labels_releasable, releasable
from pht_station_api.disclosure.numbers import MAX_EXACT_INTEGER, as_double, round_significant
from pht_station_api.disclosure.trust import image_digest, review_for, review_record

DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
REVIEWED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EXPIRES_AT = datetime(2026, 7, 5, 9, 0, tzinfo=UTC)
MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _review(digest: str = DIGEST, **fields: object) -> ImageReview:
    values: dict[str, object] = {
        "digest": digest,
        "reviewer": "steward@station.local",
        "reviewedAt": "2026-01-05T09:00:00Z",
        "expiresAt": "2026-07-05T09:00:00Z",
        "notes": "counts by stage only",
        **fields,
    }
    return ImageReview.model_validate(values)


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
    policy = DisclosurePolicy(reviewed_images=[_review()])
    assert (review_for(policy, image, MOMENT) is not None) == (digest == DIGEST)
    assert review_for(DisclosurePolicy(), image, MOMENT) is None


def test_a_review_of_one_digest_does_not_cover_another() -> None:
    policy = DisclosurePolicy(reviewed_images=[_review(DIGEST)])
    assert review_for(policy, "registry.example.org/km@" + OTHER_DIGEST, MOMENT) is None


@pytest.mark.parametrize(
    ("moment", "counts"),
    [
        (REVIEWED_AT - timedelta(seconds=1), False),  # dated in the future
        (REVIEWED_AT, True),
        (MOMENT, True),
        (EXPIRES_AT - timedelta(seconds=1), True),
        (EXPIRES_AT, False),  # expired: no review
        (EXPIRES_AT + timedelta(days=30), False),
        (None, False),  # no moment to judge by: no review counts
    ],
)
def test_a_review_counts_only_from_its_date_until_its_expiry(
    moment: datetime | None, counts: bool
) -> None:
    policy = DisclosurePolicy(reviewed_images=[_review()])
    image = "registry.example.org/km@" + DIGEST
    assert (review_for(policy, image, moment) is not None) == counts


def test_of_several_reviews_of_one_digest_the_longest_lasting_counts() -> None:
    renewed = _review(reviewedAt="2026-02-01T09:00:00Z", expiresAt="2027-01-31T09:00:00Z")
    expired = _review(reviewedAt="2025-01-01T09:00:00Z", expiresAt="2025-12-01T09:00:00Z")
    policy = DisclosurePolicy(reviewed_images=[expired, _review(), renewed])
    assert review_for(policy, "km@" + DIGEST, MOMENT) == renewed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"digest": "sha256:" + "A" * 64}, "String should match pattern"),
        ({"digest": "latest"}, "String should match pattern"),
        ({"expiresAt": "2026-01-05T09:00:00Z"}, "expiresAt must be after reviewedAt"),
        ({"expiresAt": "2027-01-07T09:00:00Z"}, "at most 366 days"),
        ({"reviewedAt": "yesterday"}, "RFC 3339"),
        ({"notes": None}, "set notes or link"),
        ({"reviewer": ""}, "at least 1 character"),
    ],
)
def test_a_malformed_review_is_refused_with_its_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _review(**fields)


def test_the_replaced_list_of_bare_digests_is_refused_with_a_pointer() -> None:
    with pytest.raises(ValidationError, match="replaced by reviewedImages"):
        DisclosurePolicy.model_validate({"autoReleaseImageDigests": [DIGEST]})


def test_the_provenance_record_names_the_review_and_hashes_its_notes() -> None:
    review = _review(link="https://git.example.org/pht/km/-/merge_requests/12")
    assert review_record(review) == {
        "reviewDigest": DIGEST,
        "reviewer": "steward@station.local",
        "reviewedAt": "2026-01-05T09:00:00Z",
        "reviewExpiresAt": "2026-07-05T09:00:00Z",
        "reviewLink": "https://git.example.org/pht/km/-/merge_requests/12",
        "reviewNotesSha256": hashlib.sha256(b"counts by stage only").hexdigest(),
    }
