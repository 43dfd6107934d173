"""The station in a box end to end: `pht demo --once`, `pht demo federated --once` (logistic
and Cox), and the local job runner's contract (bundled trains run, other images fail like an
unpullable image)."""

import asyncio
import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pht_contract import constants
from pht_contract.survivalmodels import CoxModel, RecordError
from pht_sandbox.federated import federated_demo
from pht_sandbox.stations import LocalStation, StationConfig

REPO = Path(__file__).resolve().parents[2]


def _pht(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pht_cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_once_takes_a_train_to_a_released_result_with_a_plot(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _pht(
        "demo",
        "--once",
        "--work-dir",
        str(tmp_path / "work"),
        "--out",
        str(out),
        cwd=REPO,
        timeout=200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout
    assert "EMULATED" in text and "LOCAL PROCESSES" in text
    # The steward console's address and a login of this demo's own, printed once.
    login = re.search(
        r"steward console (http://127\.0\.0\.1:\d+/console/)\n  local login: "
        r"steward@station\.local / (\S+) ",
        text,
    )
    assert login is not None, text[:2000]
    assert text.count(login[2]) == 1 and len(login[2]) >= 16
    assert "AwaitingApproval" in text and "pht approve km-survival-by-stage" in text
    # the result is held for the steward, who reviews and releases it
    assert "ResultReleased=False(AwaitingRelease)" in text
    assert "StewardReviewRequired" in text and "$ pht release pht-requests/km-survival" in text
    assert "Succeeded=True(ResultReleased)" in text
    released = json.loads((out / "result.json").read_text())
    (table,) = released["tables"]
    assert table["name"] == "survival_by_stage"
    assert table["cohortSize"] == 422
    all_rows = [row for row in table["rows"] if row[0] == "All"]
    survival = [row[5] for row in all_rows if row[5] is not None]
    assert len(survival) >= 2 and survival == sorted(survival, reverse=True)
    png = (out / "survival_by_stage.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert (out / "survival_by_stage.csv").read_text().startswith("stage,days,at_risk")
    # The same question computed by the station: released without a steward's release.
    assert "$ kubectl apply -f examples/trains/survival-aggregates.yaml" in text
    assert "$ pht release pht-requests/survival-aggregates" not in text
    computed = json.loads((out / "survival-aggregates.json").read_text())
    assert computed["tables"] == [] and computed["models"] == []
    (by_stage,) = computed["aggregates"]
    assert (by_stage["name"], by_stage["status"]) == ("survival-by-stage", "Released")
    stage_one = [row for row in by_stage["table"]["rows"] if row[0] == "I"]
    assert all(row[4] is not None for row in stage_one)  # every point of stage I released
    overall = [row for row in by_stage["table"]["rows"] if row[0] == "All"]
    assert len(overall) == 5 and sum(row[2] is not None for row in overall) >= 4
    figure = (out / "survival-by-stage.png").read_bytes()
    assert figure.startswith(b"\x89PNG\r\n\x1a\n") and len(figure) > 10_000


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_federated_demo_agrees_with_the_pooled_fit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _pht(
        "demo",
        "--work-dir",
        str(tmp_path / "work"),
        "--out",
        str(out),
        "federated",
        "--once",
        cwd=REPO,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "AGREE" in result.stdout and "round 1:" in result.stdout
    # the stations compute each round; the standing approval binds what they compute, and no
    # image review stands in for a steward
    assert "the STATION computes (spec.aggregates: a GlmRound" in result.stdout
    assert "aggregatesHash: " in result.stdout and "reviewedImages" not in result.stdout
    fit = json.loads((out / "federated-coefficients.json").read_text())
    assert len(fit["federated"]) == len(fit["pooled"]) == len(fit["features"]) >= 3
    for federated, pooled in zip(fit["federated"], fit["pooled"], strict=True):
        assert abs(federated - pooled) <= 1e-6
    assert any(abs(b) > 0.05 for b in fit["federated"])  # a real fit, not all zeros


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_federated_cox_demo_agrees_with_lifelines_and_writes_a_usable_model(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    result = _pht(
        "demo",
        "--work-dir",
        str(tmp_path / "work"),
        "--out",
        str(out),
        "federated",
        "--model",
        "cox",
        "--once",
        cwd=REPO,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout
    assert "the STATION computes (spec.aggregates: a CoxRound" in text and "round 1:" in text
    agreement = re.search(
        r"max \|federated - lifelines\| = (\S+) \(coefficients\), (\S+) \(standard errors\), "
        r"tolerance 1e-06: AGREE",
        text,
    )
    assert agreement is not None, text[-3000:]
    assert max(float(agreement[1]), float(agreement[2])) <= 1e-6
    model = CoxModel.model_validate_json((out / "federated-cox-model.json").read_text())
    assert model.terms == ["age", "sex[female]", "stage[IIIa]", "stage[IIIb]"]
    # Both columns of the printed table (6 decimals) match the released model.
    for term, coefficient, error in zip(
        model.terms, model.coefficients, model.standard_errors, strict=True
    ):
        row = re.search(rf"^\s*{re.escape(term)}\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", text, re.M)
        assert row is not None, term
        printed = [float(value) for value in row.groups()]
        assert printed[0] == pytest.approx(coefficient, abs=1e-6)
        assert printed[1] == pytest.approx(coefficient, abs=2e-6)  # lifelines
        assert printed[2] == pytest.approx(error, abs=1e-6)
        assert printed[3] == pytest.approx(error, abs=2e-6)
    ratios = re.findall(r"^\s*(\S+)\s+HR\s+(\S+)\s+\((\S+) to (\S+)\)$", text, re.M)
    assert [term for term, *_ in ratios] == model.terms
    for (_, ratio, lower, upper), coefficient in zip(ratios, model.coefficients, strict=True):
        assert float(ratio) == pytest.approx(math.exp(coefficient), abs=1e-3)
        assert float(lower) < float(ratio) < float(upper)
    # Every station released its C-index, a real one (the model orders patients by stage).
    assert [stratum.name for stratum in model.strata] == ["hospital-1", "hospital-2", "hospital-3"]
    for stratum in model.strata:
        assert stratum.concordance is not None and 0.55 < stratum.concordance < 0.9
        assert f"{stratum.name}: C = {stratum.concordance}" in text
    # A researcher applies the model to new patients.
    early = {"age": 64.0, "sex": "female", "stage": "I"}
    late = {"age": 64.0, "sex": "female", "stage": "IIIb"}
    expected = math.exp(model.coefficients[3])
    assert model.hazard_ratio(late, early) == pytest.approx(expected)
    assert model.hazard_ratio(late, early) > 1.5
    with pytest.raises(RecordError, match="stage: unknown level 'IV'"):
        model.linear_predictor({**late, "stage": "IV"})


def test_the_cox_demo_without_lifelines_says_so_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = importlib.util.find_spec

    def without_lifelines(name: str, *args: Any) -> Any:
        return None if name == "lifelines" else found(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_lifelines)
    code = asyncio.run(federated_demo(tmp_path / "work", tmp_path / "out", True, "cox"))
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: the Cox demo checks its fit against lifelines")
    assert "pip install lifelines" in error and "\n" not in error
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_an_image_that_is_not_bundled_fails_like_an_unpullable_image(tmp_path: Path) -> None:
    policy: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "policies" / "station-policy.yaml").read_text()
    )
    policy["spec"]["approval"]["mode"] = "None"
    train: dict[str, Any] = yaml.safe_load(
        (REPO / "examples" / "trains" / "cohort-summary.yaml").read_text()
    )
    train["metadata"]["name"] = "not-bundled"
    train["spec"]["image"] = "ghcr.io/pht-station/trains/not-bundled:1@sha256:" + "c" * 64
    config = StationConfig("pull-test", tmp_path / "station", patients=60)
    async with LocalStation(config) as station:
        await station.apply(policy, constants.POLICY_PLURAL)
        await station.apply(train, constants.TRAIN_PLURAL)
        final = await station.wait_for("not-bundled", lambda _t: False, 60)
    status = final["status"]
    assert status["summary"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "ImagePullFailed"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_once_exits_non_zero_when_the_train_does_not_end_released(tmp_path: Path) -> None:
    """Five patients: the disclosure gate refuses a cohort that small, the Train ends Failed,
    and `--once` says so with exit code 1 (the same code path for `--cluster real`)."""
    result = _pht(
        "demo",
        "--once",
        "--patients",
        "5",
        "--work-dir",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "out"),
        cwd=REPO,
        timeout=200,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ended Failed" in result.stdout
    assert not (tmp_path / "out" / "result.json").exists()
