"""The example trains under ``trains/examples`` that the station in a box can run locally.

A Job whose image is ``ghcr.io/pht-station/trains/<name>`` (any tag or digest) is one of these;
the station in a box runs its package with ``python -m <package>`` instead of pulling an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
TRAINS_DIR: Final = REPO / "trains" / "examples"
SDK_DIR: Final = REPO / "trains" / "sdk"
IMAGE_PREFIX: Final = "ghcr.io/pht-station/trains/"


@dataclass(frozen=True)
class BundledTrain:
    """An example train that can run as a local process."""

    name: str
    directory: Path
    module: str


def bundled_trains() -> dict[str, BundledTrain]:
    """Image repository → example train, for every train under ``trains/examples``."""
    found: dict[str, BundledTrain] = {}
    if not TRAINS_DIR.is_dir():
        return found
    for directory in sorted(TRAINS_DIR.iterdir()):
        module = directory.name.replace("-", "_")
        if (directory / module / "__main__.py").is_file():
            found[IMAGE_PREFIX + directory.name] = BundledTrain(directory.name, directory, module)
    return found


def image_repository(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last
