"""The session store: random 256-bit ids, a bounded number of sessions, a fixed end."""

import base64
from datetime import UTC, datetime, timedelta

from pht_station_api.console.sessions import SessionStore
from pht_station_api.console.signin import SignedIn

LATER = datetime.now(UTC) + timedelta(days=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_ids_are_random_256_bit_and_the_token_stays_out_of_repr() -> None:
    store = SessionStore(10, 3600)
    first, session = store.create(SignedIn("sam", "secret-token", LATER))
    second, _ = store.create(SignedIn("sam", "secret-token", LATER))
    assert first != second
    assert len(base64.urlsafe_b64decode(first + "=")) == 32
    assert "secret-token" not in repr(session)
    assert "secret-token" not in repr(SignedIn("sam", "secret-token", LATER))


def test_a_session_ends_at_its_lifetime_or_the_sign_ins_expiry() -> None:
    clock = Clock()
    store = SessionStore(10, 600, clock)
    short, _ = store.create(SignedIn("sam", "t", datetime.fromtimestamp(clock.now + 60, UTC)))
    long, _ = store.create(SignedIn("kim", "t", LATER))
    clock.now += 61
    assert store.get(short) is None
    assert store.get(long) is not None
    clock.now += 600
    assert store.get(long) is None
    assert len(store) == 0


def test_a_full_store_drops_the_session_closest_to_its_end() -> None:
    clock = Clock()
    store = SessionStore(2, 3600, clock)
    first, _ = store.create(SignedIn("a", "t", datetime.fromtimestamp(clock.now + 100, UTC)))
    second, _ = store.create(SignedIn("b", "t", LATER))
    third, _ = store.create(SignedIn("c", "t", LATER))
    assert len(store) == 2
    assert store.get(first) is None
    assert store.get(second) is not None and store.get(third) is not None


def test_unknown_and_oversized_ids_find_nothing() -> None:
    store = SessionStore(2, 3600)
    assert store.get(None) is None
    assert store.get("x" * 4096) is None
    assert store.get("not-a-session") is None
