"""The run's identity, parameters and paths, read from the environment the station sets.

A station passes everything through environment variables (the names are fixed by the
contract) and one mounted token file, so the same image runs unchanged at every station and
under ``pht train run-local``. Missing or malformed values fail early with the variable's name,
never with its value.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from pht_train.constants import (
    ENV_API_URL,
    ENV_ATTEMPT,
    ENV_PARAMETERS,
    ENV_QUERIES_DIR,
    ENV_SCRATCH,
    ENV_TOKEN_FILE,
    ENV_TRAIN_NAME,
    ENV_TRAIN_UID,
)
from pht_train.errors import ConfigurationError, ParameterError

T = TypeVar("T")
#: The default of a parameter that has none: asking for it when unset is an error.
REQUIRED: Any = object()


@dataclass(frozen=True)
class TrainEnvironment:
    """Everything a run learns from its environment."""

    api_url: str
    token_file: Path
    train_uid: str
    train_name: str
    parameters: Mapping[str, Any]
    queries_dir: Path
    scratch_dir: Path | None = None
    attempt: int = 1
    token: str = field(default="", repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "TrainEnvironment":
        """Read and check the environment; raises :class:`ConfigurationError` naming the gap."""
        env = os.environ if environ is None else environ
        api_url = _required(env, ENV_API_URL).rstrip("/")
        if not api_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{ENV_API_URL} must be an http(s) URL")
        token_file = Path(_required(env, ENV_TOKEN_FILE))
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"{ENV_TOKEN_FILE} names a file that cannot be read ({type(exc).__name__})"
            ) from None
        if not token:
            raise ConfigurationError(f"the token file named by {ENV_TOKEN_FILE} is empty")
        queries_dir = Path(_required(env, ENV_QUERIES_DIR))
        if not queries_dir.is_dir():
            raise ConfigurationError(f"{ENV_QUERIES_DIR} is not a directory")
        scratch = env.get(ENV_SCRATCH)
        return cls(
            api_url=api_url,
            token_file=token_file,
            train_uid=_required(env, ENV_TRAIN_UID),
            train_name=_required(env, ENV_TRAIN_NAME),
            parameters=parse_parameters(env.get(ENV_PARAMETERS)),
            queries_dir=queries_dir,
            scratch_dir=Path(scratch) if scratch else None,
            attempt=_attempt(env.get(ENV_ATTEMPT)),
            token=token,
        )

    @overload
    def parameter(self, name: str, kind: type[T]) -> T: ...
    @overload
    def parameter(self, name: str, kind: type[T], default: T) -> T: ...
    def parameter(self, name: str, kind: type[T], default: T = REQUIRED) -> T:
        """One parameter, type-checked; ``default`` when the Train did not set it."""
        return get_parameter(self.parameters, name, kind, default)


def parse_parameters(text: str | None) -> dict[str, Any]:
    """The Train's ``parameters``: a JSON object string, or nothing (an empty object)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{ENV_PARAMETERS} is not valid JSON ({exc.msg} at position {exc.pos})"
        ) from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{ENV_PARAMETERS} must be a JSON object")
    return value


def get_parameter(parameters: Mapping[str, Any], name: str, kind: type[T], default: T) -> T:
    """Look up and type-check a parameter (an int is accepted where a float is asked for)."""
    if name not in parameters:
        if default is REQUIRED:
            raise ParameterError(f"parameter {name!r} is required")
        return default
    value = parameters[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value]
    if isinstance(value, bool) and kind is not bool:
        raise ParameterError(f"parameter {name!r} must be of type {kind.__name__}, not bool")
    if not isinstance(value, kind):
        raise ParameterError(f"parameter {name!r} must be of type {kind.__name__}")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: is this running inside a station?")
    return value


def _attempt(text: str | None) -> int:
    if text is None or not text.strip():
        return 1
    try:
        attempt = int(text)
    except ValueError:
        raise ConfigurationError(f"{ENV_ATTEMPT} must be a positive integer") from None
    if attempt < 1:
        raise ConfigurationError(f"{ENV_ATTEMPT} must be a positive integer")
    return attempt
