"""Whether the station in a box (the separate ``pht-sandbox`` project) is installed.

``pht demo``, ``pht dev`` and ``pht train run-local`` need it; the station's images do not ship
it, so there these commands say how to install it instead of failing with a traceback.
"""

import importlib.util
import sys
from typing import Final

MISSING: Final = (
    "error: the station in a box is not installed: pip install -e sandbox "
    "(in a checkout of the station's repository; make setup does it)"
)


def missing() -> bool:
    """True (after printing one line on stderr) when ``pht_sandbox`` cannot be imported."""
    if importlib.util.find_spec("pht_sandbox") is not None:
        return False
    print(MISSING, file=sys.stderr)
    return True
