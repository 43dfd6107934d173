"""``pht train run-local``: a train against a synthetic cohort and a real local station API.

Each slow test starts a real ``pht api`` (through the command itself) and a real train process;
nothing is mocked. Trains "made to fail" or to be held are small packages written into a temp
directory, the way an author's own train would live outside this repository.
"""

import json
import re
import shlex
import textwrap
from pathlib import Path

import pytest
import yaml

from pht_cli.main import main
from pht_contract.sparql import query_hash

REPO = Path(__file__).resolve().parents[2]
KM_DIR = REPO / "trains" / "examples" / "kaplan-meier"
KM_MANIFEST = REPO / "examples" / "trains" / "kaplan-meier.yaml"
POLICY = REPO / "examples" / "policies" / "station-policy.yaml"
BANNER = "LOCAL RUN on synthetic data: not a station"


def write_train(root: Path, name: str, body: str) -> Path:
    """An author's train outside the repository: ``<root>/<name>/<package>/__main__.py``."""
    package = root / name / name.replace("-", "_")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(textwrap.dedent(body))
    return root / name


def documented_command() -> list[str]:
    """The command shown under "Run a train locally" in docs/train-sdk.md."""
    doc = (REPO / "docs" / "train-sdk.md").read_text()
    section = doc.split("## Run a train locally", 1)[1]
    match = re.search(r"```sh\n(pht train run-local [^\n]*)\n```", section)
    assert match, "docs/train-sdk.md shows no run-local command"
    return shlex.split(match.group(1))[1:]


def run_local(*args: str) -> int:
    return main(["train", "run-local", *args])


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_documented_kaplan_meier_run_is_released_with_its_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs' command, from the repository root (default manifest, policy and cohort)."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "out"
    code = main([*documented_command(), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    assert BANNER in printed.out
    sparql = yaml.safe_load(KM_MANIFEST.read_text())["spec"]["queries"][0]["sparql"]
    assert f"query   survival sha256:{query_hash(sparql)} answered" in printed.out
    assert "progress 100%  Done" in printed.out
    assert "gate    Released" in printed.out
    assert "table survival_by_stage (cohort 250" in printed.out
    result = json.loads((out / "result.json").read_text())
    (table,) = result["tables"]
    assert table["name"] == "survival_by_stage" and table["cohortSize"] == 250
    assert [c["name"] for c in table["columns"]][:2] == ["stage", "days"]
    # the gate may suppress small cells, never everything for 250 patients
    assert any(row[0] == "All" and row[2] is not None for row in table["rows"])
    csv = (out / "survival_by_stage.csv").read_text().splitlines()
    assert csv[0] == "stage,days,at_risk,events,censored,survival,std_error"
    assert len(csv) == len(table["rows"]) + 1
    run = json.loads((out / "run.json").read_text())
    assert run["release"] == "Released"
    assert [q["queryHash"] for q in run["queries"]] == [query_hash(sparql)]


def test_a_manifest_the_policy_refuses_names_each_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = yaml.safe_load(KM_MANIFEST.read_text())
    train["spec"]["requester"]["organisation"] = "acme"
    train["spec"]["image"] = "docker.io/someone/km:1@sha256:" + "a" * 64
    manifest = tmp_path / "refused.yaml"
    manifest.write_text(yaml.safe_dump(train))
    code = run_local(str(KM_DIR), "--manifest", str(manifest), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert "the station would refuse this Train" in err
    assert "spec.requester.organisation: organisation 'acme'" in err
    assert "[UnknownOrganisation]" in err
    assert "spec.image: registry 'docker.io'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_directory_without_a_train_package_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes").mkdir()
    code = run_local(str(tmp_path / "notes"), "--manifest", str(KM_MANIFEST))
    err = capsys.readouterr().err
    assert code == 2
    assert "is not a train: expected a package notes/ with a __main__.py" in err


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_failing_train_exits_1_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_train(
        tmp_path,
        "too-small",
        """
        from pht_train import Stage, fail, run

        def algorithm(train):
            rows = train.query("survival").rows
            train.progress(50, Stage.COMPUTING)
            if len(rows) < 10_000:
                fail("TooFewPatients")

        run(algorithm)
        """,
    )
    out = tmp_path / "out"
    code = run_local(str(directory), "--manifest", str(KM_MANIFEST), "--out", str(out))
    printed = capsys.readouterr()
    assert code == 1, printed.out + printed.err
    assert "failed  pht-train-failure: TooFewPatients" in printed.err
    assert "progress  50%  Computing" in printed.out
    run = json.loads((out / "run.json").read_text())
    assert run["release"] == "NoOutput" and run["failureReason"] == "TooFewPatients"
    assert run["queries"][0]["outcome"] == "answered"
    assert not (out / "result.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_small_cell_is_blocked_when_the_policy_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_train(
        tmp_path,
        "leaky",
        """
        from pht_train import ResultManifest, count, group, run

        def algorithm(train):
            rows = train.query("survival").rows
            manifest = ResultManifest()
            manifest.add_table(
                "rare", [group("stage"), count("patients")],
                [["All", len(rows)], ["I", 2]], cohort_size=len(rows),
            )
            train.upload(manifest)

        run(algorithm)
        """,
    )
    policy = yaml.safe_load(POLICY.read_text())
    policy["spec"]["disclosure"]["smallCellAction"] = "Block"
    policy_file = tmp_path / "blocking-policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    out = tmp_path / "out"
    code = run_local(
        str(directory),
        "--manifest",
        str(KM_MANIFEST),
        "--policy",
        str(policy_file),
        "--out",
        str(out),
    )
    printed = capsys.readouterr()
    assert code == 4, printed.out + printed.err
    assert "gate    Blocked (rule MinCellCount)" in printed.out
    assert not (out / "result.json").exists()
    assert json.loads((out / "run.json").read_text())["rule"] == "MinCellCount"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_result_without_audited_queries_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate trusts cohort sizes from audited queries only, never the algorithm's word."""
    directory = write_train(
        tmp_path,
        "unqueried",
        """
        from pht_train import ResultManifest, count, group, run

        def algorithm(train):
            manifest = ResultManifest()
            manifest.add_table(
                "claimed", [group("stage"), count("patients")],
                [["I", 40], ["II", 60]], cohort_size=100,
            )
            train.upload(manifest)

        run(algorithm)
        """,
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text('{"tables": [{"name": "old"}]}')
    (out / "old.csv").write_text("stale\n")
    code = run_local(str(directory), "--manifest", str(KM_MANIFEST), "--out", str(out))
    printed = capsys.readouterr()
    assert code == 3, printed.out + printed.err
    assert "query   (none: the train ran no query)" in printed.out
    assert "gate    Held (rule CohortUnverified)" in printed.out
    assert not (out / "result.json").exists() and not (out / "old.csv").exists()
