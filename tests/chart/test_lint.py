"""`helm lint --strict` on the default values and every CI profile."""

from pathlib import Path

from .rendering import CHART, NAMESPACE, PROFILES, run, tool


def test_helm_lint_strict(profile: str) -> None:
    args: list[str | Path] = [tool("helm"), "lint", "--strict", CHART, "--namespace", NAMESPACE]
    for path in PROFILES[profile]:
        args += ["-f", path]
    result = run(args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_every_ci_profile_is_exercised() -> None:
    assert {"gpu-kueue", "external-store", "monitoring", "ingress"} <= set(PROFILES)
