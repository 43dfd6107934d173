"""The station's contract: API types, policy evaluation, SPARQL hashing and the wire contract.

Everything the operator, the station API, the CLI and the tests must agree on lives here and
only here. This package imports no other station package (checked by import-linter).
"""

from importlib import metadata

from pht_contract.constants import (
    API_GROUP,
    API_VERSION,
    FINALIZER,
    STATION_POLICY_NAME,
)

#: The station's version: ``version`` in pyproject.toml is the one place it is written.
__version__: str = metadata.version("pht-station")

__all__ = ["API_GROUP", "API_VERSION", "FINALIZER", "STATION_POLICY_NAME", "__version__"]
