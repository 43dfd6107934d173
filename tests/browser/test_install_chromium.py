"""``make tools`` installs Debian's chromium for these tests: nothing to do where it is, and one
line naming the command where it cannot install it (the tests then fail with that reason)."""

import subprocess
from pathlib import Path

from .browserkit import REPO

SCRIPT = REPO / "tools" / "install-chromium.sh"


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_an_installed_chromium_is_left_alone(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    done = run({"PATH": "/usr/bin:/bin", "PHT_CHROMIUM": str(browser)})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_without_apt_get_it_names_the_command_in_one_line(tmp_path: Path) -> None:
    # Only `id` on the PATH: no apt-get to install with.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "id").symlink_to("/usr/bin/id")
    done = run({"PATH": str(tools), "PHT_CHROMIUM": str(tmp_path / "missing")})
    assert done.returncode == 0
    assert done.stderr.splitlines() == [
        "install-chromium: the browser tests need Debian's chromium: apt-get install -y chromium"
    ]
