"""The station in a box is a separate installable part; commands that need it say so."""

from __future__ import annotations

import importlib
from typing import Final

from pht_cli.errors import CliError

SANDBOX_PACKAGE: Final = "pht_sandbox"
NOT_INSTALLED: Final = (
    "the station in a box is not installed: pip install pht-sandbox "
    "(or, in a checkout, pip install -e sandbox)"
)


def require_sandbox() -> None:
    """Raise a one-line :class:`CliError` when :mod:`pht_sandbox` cannot be imported."""
    try:
        importlib.import_module(SANDBOX_PACKAGE)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == SANDBOX_PACKAGE or missing.startswith(SANDBOX_PACKAGE + "."):
            raise CliError(NOT_INSTALLED) from None
        raise
