"""Console sessions: kept in this process's memory, bounded, and ending at a fixed time.

A session is found by a random 256-bit id, the only thing the browser holds (in the
``__Host-pht-console`` cookie); the store keeps the id's SHA-256 only. The steward's bearer
token stays on the server. One account (a user name, or an OpenID provider's subject) holds at
most :data:`MAX_SESSIONS_PER_USER` sessions (signing in once more ends its own session closest
to its end), and when the store is full the account holding the most sessions gives up one:
signing in again and again never pushes other stewards out.
"""

import hashlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Final

from pht_station_api.console.signin import SignedIn

COOKIE_NAME: Final = "__Host-pht-console"
ID_BYTES: Final = 32
#: Sessions one user name may hold at once (browsers, devices).
MAX_SESSIONS_PER_USER: Final = 5


@dataclass(frozen=True)
class Session:
    username: str
    token: str
    #: Seconds since the epoch.
    expires_at: float
    #: Every form of this session carries it; each POST must send it back.
    csrf_token: str
    #: Whose session this is (:attr:`SignedIn.account`): sessions are counted per account.
    account: str = ""

    def __repr__(self) -> str:
        return f"Session(username={self.username!r}, expires_at={self.expires_at!r})"


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(
        self,
        max_sessions: int,
        max_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions: dict[str, Session] = {}
        self._max_sessions = max_sessions
        self._max_seconds = max_seconds
        self._clock = clock
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, signed_in: SignedIn) -> tuple[str, Session]:
        """A new session for ``signed_in``; returns its id (for the cookie) and the session.
        It ends at the sign-in's expiry or after the configured lifetime, whichever is first."""
        now = self._clock()
        expiry = signed_in.expires_at
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        ends = min(now + self._max_seconds, expiry.timestamp())
        session = Session(
            signed_in.username,
            signed_in.token,
            ends,
            secrets.token_urlsafe(ID_BYTES),
            signed_in.account,
        )
        session_id = secrets.token_urlsafe(ID_BYTES)
        with self._lock:
            self._drop_expired(now)
            own = [k for k, s in self._sessions.items() if s.account == signed_in.account]
            while len(own) >= MAX_SESSIONS_PER_USER:
                oldest = min(own, key=lambda k: self._sessions[k].expires_at)
                own.remove(oldest)
                del self._sessions[oldest]
            while len(self._sessions) >= self._max_sessions:
                del self._sessions[self._make_room()]
            self._sessions[_key(session_id)] = session
        return session_id, session

    def _make_room(self) -> str:
        """The session to end in a full store: of the user holding the most sessions, the one
        closest to its end (with one session each: the one closest to its end)."""
        held = Counter(s.account for s in self._sessions.values())
        return min(
            self._sessions,
            key=lambda k: (-held[self._sessions[k].account], self._sessions[k].expires_at),
        )

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id; an expired one is forgotten and gives ``None``."""
        if not session_id or len(session_id) > 128:
            return None
        key = _key(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if session.expires_at <= self._clock():
                del self._sessions[key]
                return None
            return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_key(session_id), None)

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
