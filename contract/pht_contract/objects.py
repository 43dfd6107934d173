"""A Kubernetes object as the API server sends it: decoded JSON, one alias for every package."""

from typing import Any

#: A Kubernetes object (or any JSON object) as a plain dict.
Obj = dict[str, Any]
