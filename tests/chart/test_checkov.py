"""checkov on every rendered profile: no failed check; a check may be skipped only inline, in the
template, with a written reason (checkov.io/skipN annotations)."""

import json
from pathlib import Path
from typing import Any

import pytest

from .rendering import run


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_checkov_finds_no_unexplained_failure(
    checkov: Path, rendered_text: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered_text)
    result = run(
        [checkov, "-f", manifest, "--framework", "kubernetes", "--skip-download", "-o", "json"],
        timeout=240,
    )
    report: Any = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 100
    for check in results["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, (
            f"{check['check_id']} on {check['resource']} skipped without a reason"
        )
