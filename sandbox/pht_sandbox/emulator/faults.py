"""Failures a test injects into the emulator: HTTP errors, dropped or hung watch streams."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass
class _FaultRule:
    code: int
    remaining: int
    methods: frozenset[str]
    plural: str | None
    subresource: str | None
    watch: bool


@dataclasses.dataclass
class Faults:
    """Failures a test injects: each rule answers the next ``count`` matching requests."""

    rules: list[_FaultRule] = dataclasses.field(default_factory=list)
    #: While set, watch streams stay open but deliver nothing (no events, no bookmarks).
    hang_watches: bool = False
    _drop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def fail(
        self,
        code: int,
        *,
        count: int = 1,
        methods: Iterable[str] = ("POST", "PUT", "PATCH", "DELETE"),
        plural: str | None = None,
        subresource: str | None = None,
        watch: bool = False,
    ) -> None:
        """Answer the next ``count`` matching requests with ``code`` (e.g. 409, 500, 503)."""
        self.rules.append(
            _FaultRule(
                code,
                count,
                frozenset(m.upper() for m in methods),
                plural,
                subresource,
                watch,
            )
        )

    def drop_watches(self) -> None:
        """Close every open watch stream now (clients must re-watch)."""
        self._drop.set()
        self._drop = asyncio.Event()

    def take(self, method: str, plural: str, subresource: str | None, watch: bool) -> int | None:
        for rule in self.rules:
            if (
                rule.remaining > 0
                and method in rule.methods
                and rule.plural in (None, plural)
                and (rule.subresource is None or rule.subresource == subresource)
                and rule.watch == watch
            ):
                rule.remaining -= 1
                return rule.code
        self.rules = [r for r in self.rules if r.remaining > 0]
        return None
