"""Helpers for the channel attacks: the station API test kit, reachable from this folder."""

import sys
from pathlib import Path

_STATION_API_TESTS = str(Path(__file__).resolve().parent.parent / "station_api")
if _STATION_API_TESTS not in sys.path:
    sys.path.insert(0, _STATION_API_TESTS)

from stationkit import (  # noqa: E402  (the path above makes it importable)
    OPERATOR_TOKEN,
    bearer,
    identities_file,
    make_store,
    registration,
)

__all__ = ["OPERATOR_TOKEN", "bearer", "identities_file", "make_store", "registration"]
