"""The Train's named SPARQL queries, as the station mounted them.

The station writes one ``<query-name>.rq`` file per query of the Train spec. A train sends
those exact texts: at a station that runs only approved queries, the approval covers the hash
of these texts, so a train that edits or builds its own query is refused.
"""

import re
from pathlib import Path

from pht_train.constants import QUERY_SUFFIX
from pht_train.errors import ConfigurationError, QueryNotFound

#: Query names are DNS labels in the Train spec.
_QUERY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load_queries(directory: Path) -> dict[str, str]:
    """Every named query in ``directory``, by name."""
    try:
        files = sorted(directory.glob("*" + QUERY_SUFFIX))
    except OSError as exc:
        raise ConfigurationError(f"the queries directory cannot be read ({exc.strerror})") from None
    return {path.name[: -len(QUERY_SUFFIX)]: path.read_text(encoding="utf-8") for path in files}


def load_query(directory: Path, name: str) -> str:
    """The text of one named query; :class:`QueryNotFound` lists the names that exist."""
    if not _QUERY_NAME.match(name):
        raise QueryNotFound(f"{name!r} is not a query name (query names are DNS labels)")
    path = directory / (name + QUERY_SUFFIX)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(sorted(load_queries(directory))) or "none"
        raise QueryNotFound(
            f"the Train declares no query named {name!r} (declared: {known})"
        ) from None
