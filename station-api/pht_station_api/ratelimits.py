"""Per-token query rate limits: a sliding one-minute window per registered train.

In memory on purpose: a restart resets the window, which costs at most one extra minute of
queries, while persisting every query timestamp would put a write on the hot path.
"""

import threading
import time
from collections import deque

from pht_station_api.errors import RateLimited

WINDOW_SECONDS = 60.0


class RateLimiter:
    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, per_minute: int, now: float | None = None) -> None:
        """Count one query for ``key`` or raise :class:`RateLimited` (the query is not counted)."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            window = self._seen.setdefault(key, deque())
            while window and window[0] <= moment - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= per_minute:
                retry = max(1, int(window[0] + WINDOW_SECONDS - moment) + 1)
                raise RateLimited(
                    f"the policy allows {per_minute} queries per minute for a train", retry
                )
            window.append(moment)

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)
