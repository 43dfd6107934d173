"""The project's own documents hold together: the design is in the repository, its links resolve,
decision records are indexed, and pre-commit runs exactly what `make lint` runs."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _relative_links(page: Path) -> list[str]:
    targets = LINK.findall(page.read_text())
    return [t for t in targets if "://" not in t and not t.startswith("mailto:")]


def test_design_documents_exist_in_the_repository() -> None:
    for name in ("docs/architecture.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs/adr/README.md"):
        assert (REPO / name).is_file(), name


def test_nothing_points_at_a_design_document_outside_the_repository() -> None:
    pages = [*REPO.glob("*.md"), *(REPO / "docs").rglob("*.md")]
    sources = [
        p
        for folder in ("contract", "operator", "station-api", "sandbox", "cli")
        for p in (REPO / folder).rglob("*.py")
    ]
    offenders = [
        str(p.relative_to(REPO))
        for p in [*pages, *sources]
        if "../shared" in p.read_text() or "ARCHITECTURE.md" in p.read_text()
    ]
    assert offenders == []


def test_every_relative_link_in_the_design_documents_resolves() -> None:
    pages = [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        REPO / "docs" / "architecture.md",
        *(REPO / "docs" / "adr").glob("*.md"),
    ]
    broken = [
        f"{page.relative_to(REPO)} -> {target}"
        for page in pages
        for target in _relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert broken == []


def test_every_decision_record_is_indexed_and_every_index_entry_exists() -> None:
    adr = REPO / "docs" / "adr"
    records = {p.name for p in adr.glob("[0-9][0-9][0-9][0-9]-*.md")}
    indexed = {Path(t).name for t in _relative_links(adr / "README.md")}
    assert records, "no decision records"
    assert records == indexed
    for name in records:
        text = (adr / name).read_text()
        assert "**Status:**" in text and "## Decision" in text and "## Consequences" in text, name


def _make_recipe(target: str) -> list[str]:
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_pre_commit_runs_what_make_lint_runs() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    # pre-commit passes file names (so it needs --force-exclude to honour the excludes);
    # make lint passes the whole tree.
    from_hooks = sorted(
        e.removeprefix(".venv/bin/").replace(" --force-exclude", "") for e in entries
    )
    from_make = sorted(c.removeprefix("$(BIN)/").removesuffix(" .") for c in _make_recipe("lint"))
    assert from_hooks == from_make
