"""A short-lived memory of review answers, so a steward's page does not cost a review per call.

:class:`CachedIdentities` wraps any :class:`~pht_station_api.identities.IdentityChecker`.
Authentication answers (an identity, or "not valid") are kept under a keyed hash of the token,
never the token; authorisation answers under the identity and the whole question (verb,
namespace, name, subresource). Both expire after ``ttl_seconds`` and at most ``max_entries``
of each are kept (the oldest go first). A failure to ask is never remembered: the next request
asks again. ``ttl_seconds=0`` turns the memory off.
"""

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from pht_station_api.errors import Unauthenticated
from pht_station_api.identities import Identity, IdentityChecker

DEFAULT_MAX_ENTRIES: Final = 4096

Value = TypeVar("Value")


class ExpiringAnswers(Generic[Value]):
    """Answers that expire ``ttl_seconds`` after they were stored; the oldest go when full."""

    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._answers: OrderedDict[Hashable, tuple[float, Value]] = OrderedDict()

    def get(self, key: Hashable) -> Value | None:
        entry = self._answers.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._answers[key]
            return None
        return value

    def put(self, key: Hashable, value: Value) -> None:
        if self._ttl <= 0:
            return
        self._answers[key] = (self._clock() + self._ttl, value)
        self._answers.move_to_end(key)
        while len(self._answers) > self._max:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)


class CachedIdentities:
    """Remembers review answers for a few seconds; failures to ask are not remembered."""

    def __init__(
        self,
        inner: IdentityChecker,
        ttl_seconds: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        # A per-process key: the memory holds no value that could be checked against a token.
        self._key = secrets.token_bytes(32)
        # An identity, or the message a refused token was given.
        self._tokens: ExpiringAnswers[Identity | str] = ExpiringAnswers(
            ttl_seconds, max_entries, clock
        )
        self._decisions: ExpiringAnswers[bool] = ExpiringAnswers(ttl_seconds, max_entries, clock)

    def _token_key(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    async def authenticate(self, token: str) -> Identity:
        key = self._token_key(token)
        answer = self._tokens.get(key)
        if answer is None:
            try:
                answer = await self._inner.authenticate(token)
            except Unauthenticated as refusal:
                self._tokens.put(key, refusal.message)
                raise
            self._tokens.put(key, answer)
        if isinstance(answer, str):
            raise Unauthenticated(answer)
        return answer

    async def allowed(
        self, identity: Identity, verb: str, namespace: str, name: str, subresource: str | None
    ) -> bool:
        key = (identity, verb, namespace, name, subresource)
        decision = self._decisions.get(key)
        if decision is not None:
            return decision
        decision = await self._inner.allowed(identity, verb, namespace, name, subresource)
        self._decisions.put(key, decision)
        return decision

    async def close(self) -> None:
        await self._inner.close()
