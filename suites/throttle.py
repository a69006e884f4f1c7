"""A sliding-window request budget shared by every process of a run (xdist workers included)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the budget is then per process
    fcntl = None  # type: ignore[assignment]

MARGIN_SECONDS = 0.05
"""Added to the period: our clock and the server's see a request at slightly different times."""


def budget_file(*parts: str) -> Path:
    """A file in the temp folder named after `parts` (target URL, credential): runs that share a
    target and a credential share the budget, as the server's limiter does."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pepharness-budget-{digest}.json"


class SharedWindow:
    """At most `limit` requests in any `period` seconds, counted in a file under an exclusive
    lock, so that parallel workers hitting one rate-limited endpoint stay below its limit
    together."""

    def __init__(self, path: Path, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"a budget of {limit} per {period}s admits nothing")
        self.path = path
        self.limit = limit
        self.period = period + MARGIN_SECONDS
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot and take it; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._locked() as stamps:
                now = time.time()
                recent = [t for t in stamps if now - self.period < t <= now]
                if len(recent) < self.limit:
                    recent.append(now)
                    stamps[:] = recent
                    return waited
                delay = recent[0] + self.period - now
                stamps[:] = recent
            pause = min(max(delay, 0.005), self.period)
            time.sleep(pause)
            waited += pause

    @contextmanager
    def _locked(self) -> Iterator[list[float]]:
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as handle:
                    try:
                        stamps = [float(t) for t in json.loads(handle.read() or "[]")]
                    except (ValueError, TypeError):
                        stamps = []
                    yield stamps
                    handle.seek(0)
                    handle.truncate()
                    handle.write(json.dumps(stamps))
            finally:
                os.close(fd)  # closing the descriptor releases the lock
