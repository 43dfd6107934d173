"""Constants shared by the train tests (a uniquely named module: ``conftest`` names collide)."""

from pathlib import Path

RECEIPT = {"uid": "u", "attempt": 1, "digest": "sha256:" + "a" * 64, "sizeBytes": 10}
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "trains" / "examples"
