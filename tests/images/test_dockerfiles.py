"""The essentials of every image, checked without a Docker engine: multi-stage builds from pinned
base images, a numeric non-root user, no build tools or package installs in the final stage, and
every COPY source present in the build context skaffold.yaml uses."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .dockerfiles import copy_sources, instructions, stages

ROOT = Path(__file__).resolve().parents[2]
TRAINS = sorted(p.name for p in (ROOT / "trains" / "examples").iterdir() if p.is_dir())


def _artifacts() -> dict[Path, Path]:
    """Dockerfile -> build context, as skaffold.yaml declares them."""
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    result = {}
    for artifact in config["build"]["artifacts"]:
        context = ROOT / artifact.get("context", ".")
        dockerfile = context / artifact.get("docker", {}).get("dockerfile", "Dockerfile")
        result[dockerfile.resolve()] = context.resolve()
    return result


DOCKERFILES = sorted(
    [ROOT / "operator" / "Dockerfile", ROOT / "station-api" / "Dockerfile"]
    + [ROOT / "trains" / "examples" / name / "Dockerfile" for name in TRAINS]
)
PINNED = re.compile(r"^[\w./-]+(:(?!latest$)[\w.-]*\d[\w.-]*)?(@sha256:[a-f0-9]{64})?$")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cargo|rustc|cmake|git)\b")


def _id(path: Path) -> str:
    return str(path.parent.relative_to(ROOT))


def test_every_example_train_has_a_dockerfile() -> None:
    assert {"cohort-summary", "kaplan-meier", "federated-logreg", "gpu-training-step"} <= set(
        TRAINS
    )
    for name in TRAINS:
        assert (ROOT / "trains" / "examples" / name / "Dockerfile").is_file(), name


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_base_images_are_pinned(dockerfile: Path) -> None:
    for stage in stages(dockerfile):
        base = stage.base
        assert PINNED.match(base), f"{base}: pin an exact version tag or a digest"
        assert ":" in base.rsplit("/", 1)[-1] or "@sha256:" in base, f"{base}: no tag"
        assert not base.endswith(":latest")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_multi_stage_with_numeric_non_root_user(dockerfile: Path) -> None:
    built = stages(dockerfile)
    assert len(built) >= 2, "build in one stage, run from a clean final stage"
    final = built[-1]
    users = final.all("USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]}: use a numeric, non-zero uid"
    assert not gid or (gid.isdigit() and int(gid) > 0), f"USER {users[-1]}: numeric, non-zero gid"
    # Nothing after the last USER may switch back.
    tail = final.instructions[[i.arguments for i in final.instructions].index(users[-1]) :]
    assert not [i for i in tail if i.keyword == "USER" and i.arguments != users[-1]]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_final_stage_has_no_build_tools_or_installs(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    for command in final.all("RUN"):
        assert not BUILD_TOOLS.search(command), command
        assert "apt-get install" not in command and "apk add" not in command, command
        assert "pip install" not in command, f"install in the build stage: {command}"
    copied_from = [a for a in final.all("COPY") if "--from=" in a]
    assert copied_from, "the final stage copies the built environment from the build stage"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_entrypoint_is_exec_form(dockerfile: Path) -> None:
    (entrypoint,) = stages(dockerfile)[-1].all("ENTRYPOINT")
    command = json.loads(entrypoint)
    assert isinstance(command, list) and command
    if command[:2] == ["python", "-m"]:
        module = dockerfile.parent / command[2]
        assert (module / "__main__.py").is_file(), f"{command[2]} has no __main__.py"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_copy_sources_exist_in_the_skaffold_build_context(dockerfile: Path) -> None:
    contexts = _artifacts()
    assert dockerfile.resolve() in contexts, "skaffold.yaml must build this image"
    context = contexts[dockerfile.resolve()]
    for stage in stages(dockerfile):
        for source in copy_sources(stage):
            assert (context / source).exists(), f"COPY {source}: not in the context {context}"


def test_the_checks_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """Guards the checks above: a one-stage image from :latest running as root is caught."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "ARG BASE=python:latest\nFROM ${BASE}\nRUN apt-get install -y gcc \\\n && make\nUSER root\n"
    )
    (stage,) = stages(bad)
    assert stage.base == "python:latest"
    assert not PINNED.match(stage.base)
    assert stage.all("USER") == ["root"]
    assert BUILD_TOOLS.search(stage.all("RUN")[0])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_checkov_finds_no_unexplained_failure(checkov: Path) -> None:
    args = [str(checkov), "--framework", "dockerfile", "--skip-download", "-o", "json"]
    for dockerfile in DOCKERFILES:
        args += ["-f", str(dockerfile)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [f"{c['check_id']} {c['file_path']}" for c in report["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] >= 20 * len(DOCKERFILES)
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, f"{check['check_id']} in {check['file_path']} without a reason"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_id)
def test_make_images_builds_the_dockerfile_itself_on_debian_bases(dockerfile: Path) -> None:
    """`make images` runs these very Dockerfiles with buildah and swaps only the base images
    (Debian's python3.11 from debootstrap for python.org's): every stage starts from one of the
    two build arguments the script passes, whose defaults are the same pinned slim image."""
    arguments = {
        i.arguments.partition("=")[0]: i.arguments.partition("=")[2]
        for i in instructions(dockerfile.read_text())
        if i.keyword == "ARG"
    }
    assert arguments["PYTHON_IMAGE"] == arguments["PYTHON_BUILD_IMAGE"]
    froms = [
        i.arguments.split()[0] for i in instructions(dockerfile.read_text()) if i.keyword == "FROM"
    ]
    assert froms == ["${PYTHON_BUILD_IMAGE}", "${PYTHON_IMAGE}"]
    script = (ROOT / "tools" / "images" / "build.sh").read_text()
    assert '--build-arg "PYTHON_IMAGE=$runtime_base"' in script
    assert '--build-arg "PYTHON_BUILD_IMAGE=$build_base"' in script
