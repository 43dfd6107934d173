"""Shared pieces for the gate's adversarial tests: the example policy, attack manifests.

The attacker is the algorithm's author (and the requester who submits it): they choose every
label, count, number and byte of the result. The station's example policy is the target.
"""

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pht_contract.manifests import ResultManifest
from pht_contract.policies import DisclosurePolicy, ImageReview

REPO = Path(__file__).resolve().parents[2]
for helpers in ("station_api", "station_api/disclosure"):
    path = str(REPO / "tests" / helpers)
    if path not in sys.path:
        sys.path.insert(0, path)

POLICY_FILE = REPO / "examples" / "policies" / "station-policy.yaml"
COHORT = 422  # the synthetic Lung1-shaped cohort the attacks ran against
REVIEWED_DIGEST = "sha256:" + "c" * 64
REVIEWED_IMAGE = "ghcr.io/pht-station/trains/kaplan-meier:0.1.0@" + REVIEWED_DIGEST
UNREVIEWED_IMAGE = "ghcr.io/pht-station/trains/evil:0.1.0@sha256:" + "d" * 64
PATIENT_IDS = [f"LUNG1-{i:03d}" for i in range(1, COHORT + 1)]
#: When the gate decides in these tests: inside the validity of the review below.
REVIEW_MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def example_policy(reviewed: bool = False) -> DisclosurePolicy:
    """The example StationPolicy's disclosure rules; optionally with one image reviewed."""
    spec = yaml.safe_load(POLICY_FILE.read_text())["spec"]
    policy = DisclosurePolicy.model_validate(spec["disclosure"])
    if reviewed:
        review = ImageReview(
            digest=REVIEWED_DIGEST,
            reviewer="steward@station.local",
            reviewed_at="2026-01-05T09:00:00Z",
            expires_at="2026-12-31T09:00:00Z",
            notes="Kaplan-Meier by stage: counts and survival only",
        )
        policy = policy.model_copy(update={"reviewed_images": [review]})
    return policy


def table(name: str, group: str, rows: list[list[Any]], cohort: int = COHORT) -> dict[str, Any]:
    """A table of one Group column, a Count column and a Statistic column."""
    return {
        "name": name,
        "columns": [
            {"name": group, "role": "Group"},
            {"name": "patients", "role": "Count"},
            {"name": "value", "role": "Statistic"},
        ],
        "rows": rows,
        "cohortSize": cohort,
    }


def km_like() -> dict[str, Any]:
    """An honest result: survival by stage at two time points (labels from the policy)."""
    rows = [
        [stage, days, at_risk, survival]
        for stage, counts in (("I", (100, 80)), ("IIIb", (150, 90)), ("All", (422, 300)))
        for days, at_risk, survival in ((365, counts[0], 0.81234), (730, counts[1], 0.61234))
    ]
    return {
        "tables": [
            {
                "name": "survival_by_stage",
                "columns": [
                    {"name": "stage", "role": "Group"},
                    {"name": "days", "role": "Group"},
                    {"name": "at_risk", "role": "Count"},
                    {"name": "survival", "role": "Statistic"},
                ],
                "rows": rows,
                "cohortSize": COHORT,
            }
        ]
    }


def parse(body: dict[str, Any]) -> ResultManifest:
    return ResultManifest.model_validate(body)
