"""The console's languages: English and Dutch, every visible string from a catalog.

The language is the ``lang`` query parameter, else the ``pht-console-lang`` cookie, else the
first supported language in ``Accept-Language``, else English. Catalogs are JSON files under
``locales/`` (one per language, the same keys in each); a string may hold ``{name}`` fields.
"""

import json
from functools import cache
from importlib import resources
from typing import Final

from fastapi import Request

LANGUAGES: Final = ("en", "nl")
DEFAULT_LANGUAGE: Final = "en"
LANGUAGE_COOKIE: Final = "pht-console-lang"


@cache
def catalog(language: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath("locales", f"{language}.json").read_text("utf-8")
    entries: dict[str, str] = json.loads(text)
    return entries


def _accepted(header: str) -> list[str]:
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                weight = 0.0
        weighted.append((-weight, index, tag.strip().lower().split("-")[0]))
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(request: Request) -> str:
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
    ):
        if candidate in LANGUAGES:
            return candidate
    for tag in _accepted(request.headers.get("accept-language", "")):
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


class Translator:
    """``t("key", name=value)``: the string of ``key`` in the chosen language, filled in."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._entries = catalog(language)

    def __call__(self, key: str, **values: object) -> str:
        text = self._entries.get(key) or catalog(DEFAULT_LANGUAGE)[key]
        return text.format(**values) if values else text
