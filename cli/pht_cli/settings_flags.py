"""Command-line flags generated from a pydantic settings model, one per field.

A field ``run_namespace`` of a model whose environment prefix is ``PHT_OPERATOR_`` becomes
``--run-namespace``, its help is the field's description (or, when it has none, its name),
followed by the environment variable it mirrors and its default. A flag given on the command
line overrides the environment. Secrets (``*_token``, ``*_password``) get no flag: a command
line is visible to every user of the machine; give them as environment variables or through
their ``*_file`` settings.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

SECRET_SUFFIXES: Final = ("_token", "_password")


@dataclass(frozen=True)
class SettingFlag:
    """One generated flag: the field it sets and the option strings that reach it."""

    field: str
    flags: tuple[str, ...]


def is_secret(field: str) -> bool:
    return field.lower().endswith(SECRET_SUFFIXES)


def flag_name(field: str) -> str:
    return "--" + field.lower().replace("_", "-")


def _inner(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _parsing(annotation: Any) -> tuple[Callable[[str], Any] | None, str, list[str] | None]:
    """argparse ``type``, metavar and choices for a field's annotation."""
    kind = _inner(annotation)
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        return None, "", [str(a) for a in typing.get_args(kind)]
    if kind is bool:
        return None, "", ["true", "false"]
    if kind is int:
        return int, "N", None
    if kind is float:
        return float, "X", None
    if kind is Path:
        return Path, "PATH", None
    if origin is list:
        return None, "A,B,...", None
    if origin is dict:
        return None, "K=V,...", None
    return None, "TEXT", None


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined or info.default is None:
        return ""
    return f", default {info.default}"


def help_text(field: str, info: FieldInfo, env_prefix: str) -> str:
    """The field's description, else its name in words; then its variable and default."""
    text = (info.description or "").strip() or field.lower().replace("_", " ")
    return f"{text} (env {env_prefix}{field.upper()}{_default(info)})".replace("%", "%%")


def add_settings_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseSettings],
    *,
    aliases: Mapping[str, Iterable[str]] | None = None,
) -> list[SettingFlag]:
    """Add one flag per non-secret field (``dest`` is the field name); ``aliases`` adds
    further option strings to a field's flag (earlier spellings that keep working)."""
    env_prefix = str(model.model_config.get("env_prefix", ""))
    added: list[SettingFlag] = []
    for field, info in model.model_fields.items():
        if is_secret(field):
            continue
        convert, metavar, choices = _parsing(info.annotation)
        flags = (flag_name(field), *(aliases or {}).get(field, ()))
        options: dict[str, Any] = {
            "dest": field,
            "default": None,
            "help": help_text(field, info, env_prefix),
        }
        if convert is not None:
            options["type"] = convert
        if choices is not None:
            options["choices"] = choices
        else:
            options["metavar"] = metavar
        parser.add_argument(*flags, **options)
        added.append(SettingFlag(field, flags))
    return added


def overrides(args: argparse.Namespace, model: type[BaseSettings]) -> dict[str, Any]:
    """The settings given on the command line, by field name."""
    return {
        field: getattr(args, field)
        for field in model.model_fields
        if getattr(args, field, None) is not None
    }
