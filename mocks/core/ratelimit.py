"""Per-key sliding-window rate limiting whose windows read the service `Clock`.

The windows are pyrate-limiter's: one `InMemoryBucket` (sliding-window log) per key, fed
`RateItem`s stamped with the service clock — the library's documented way to bring its own time
source (a `BucketFactory.wrap_item` stamps items from any clock). `limits` cannot do this: its
memory storage reads `time.time()` directly, so an admin clock move would not reach it. Only the
key routing, the locking and the expiry of idle keys live here.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from pyrate_limiter import InMemoryBucket, Rate, RateItem

from pepharness.mocks.core.clock import Clock


@dataclass(frozen=True)
class RateDecision:
    """The verdict on one request: allowed, or how long to wait (whole seconds, >= 1)."""

    allowed: bool
    retry_after: int
    limit: int
    remaining: int


MAX_LIMIT = 1_000_000
MIN_PERIOD_SECONDS = 0.001
MAX_PERIOD_SECONDS = 86_400
"""The bounds of a limit and its window (D73): at least one request per millisecond-resolved
window, at most a million requests per day-long window."""


def _checked(limit: int, period_seconds: float) -> Rate:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    if (
        isinstance(period_seconds, bool)
        or not isinstance(period_seconds, int | float)
        or not math.isfinite(period_seconds)
        or not MIN_PERIOD_SECONDS <= period_seconds <= MAX_PERIOD_SECONDS
    ):
        raise ValueError(
            f"period_seconds must be a number from {MIN_PERIOD_SECONDS} to "
            f"{MAX_PERIOD_SECONDS}, not {period_seconds!r}"
        )
    # pyrate-limiter's sliding window counts a hit while `hit >= now - interval` (its lower
    # bound is inclusive) and adds 1 ms to every wait to step past it. One millisecond less of
    # interval makes the window (now - period, now]: a hit stops counting exactly `period` after
    # it, so a 1-second window asks for `Retry-After: 1`, not 2, and waiting that long suffices.
    return Rate(limit, max(1, round(period_seconds * 1000) - 1))


class RateLimiter:
    """`limit` requests per `period_seconds` per key, over a sliding window on `clock`.

    Thread-safe. Keys idle for a whole period are forgotten, so memory follows the keys active
    within the last period or two, not every key ever seen.
    """

    def __init__(self, clock: Clock, limit: int, period_seconds: float) -> None:
        self.clock = clock
        self._initial = (limit, period_seconds)
        self._rate = _checked(limit, period_seconds)
        self._period_seconds = float(period_seconds)
        self._buckets: dict[str, InMemoryBucket] = {}
        self._last_sweep = self._now_ms()
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self._rate.limit

    @property
    def period_seconds(self) -> float:
        return self._period_seconds

    @property
    def tracked_keys(self) -> int:
        """How many keys currently hold a window."""
        with self._lock:
            return len(self._buckets)

    def configure(self, limit: int, period_seconds: float) -> None:
        """A new limit and period; every key starts a fresh window."""
        rate = _checked(limit, period_seconds)
        with self._lock:
            self._rate = rate
            self._period_seconds = float(period_seconds)
            self._buckets.clear()

    def reset(self) -> None:
        """The limit and period given at construction, and no key has any hit."""
        self.configure(*self._initial)

    def hit(self, key: str) -> RateDecision:
        """Count one request for `key` unless that exceeds the limit."""
        with self._lock:
            now = self._now_ms()
            self._sweep(now)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = InMemoryBucket([self._rate])
            else:
                newest = bucket.peek(0)
                if newest is not None and newest.timestamp > now:
                    # The clock was set back: a log from the "future" would block for the jump.
                    bucket.flush()
            item = RateItem(key, now)
            if bucket.put(item):
                bucket.leak(now)
                remaining = max(0, self._rate.limit - bucket.count())
                return RateDecision(True, 0, self._rate.limit, remaining)
            wait_ms = bucket.waiting(item)
            if not isinstance(wait_ms, int):
                raise TypeError("an in-memory bucket answered asynchronously")
            return RateDecision(False, max(1, math.ceil(wait_ms / 1000)), self._rate.limit, 0)

    def _now_ms(self) -> int:
        return math.floor(self.clock.now().timestamp() * 1000)

    def _sweep(self, now: int) -> None:
        interval = self._rate.interval
        if self._last_sweep <= now < self._last_sweep + interval:
            return
        self._last_sweep = now
        for key, bucket in list(self._buckets.items()):
            newest = bucket.peek(0)
            if newest is None or newest.timestamp < now - interval or newest.timestamp > now:
                del self._buckets[key]
