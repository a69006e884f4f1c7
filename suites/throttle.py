"""A sliding-window request budget shared by every process of a run (xdist workers included).

Without clock control a full window is waited out. With it (D173), the target's clock is moved
by the wait instead: one admin call, made under the budget's lock so that one process moves it,
and the budget's stamps are shifted back by the same amount, as the target now sees them. The
moves are never put back (D175): moved back, the requests and records made while it was ahead
would be "ahead" again, counted by the next window, found by the next "since now"."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the budget is then per process
    fcntl = None  # type: ignore[assignment]

MARGIN_SECONDS = 0.05
"""Added to the period: our clock and the server's see a request at slightly different times."""
MOVE_MARGIN_SECONDS = 0.2
"""Added to a clock move: a request reaches the server a little after its stamp here, and a
move costs nothing, unlike a wait (a move short by a few milliseconds would cost a 429)."""

MAX_CROSS_SECONDS = 3600.0
"""The longest Retry-After crossed by a clock move (a longer one is a target to report, not to
humour: the paced session then waits its capped wait)."""

Advance = Callable[[float], bool]
"""Moves the target's clock forward by the seconds given; False when it could not."""


def budget_file(*parts: str) -> Path:
    """A file in the temp folder named after `parts` (target URL, credential): runs that share a
    target and a credential share the budget, as the server's limiter does."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pepharness-budget-{digest}.json"


@dataclass
class Budget:
    """What the budget file holds: the stamps of the requests sent (this machine's time, shifted
    back by every clock move since) and the seconds the target's clock was moved forward."""

    stamps: list[float] = field(default_factory=list)
    moved: float = 0.0

    def shift(self, seconds: float) -> None:
        """The target's clock moved forward by `seconds`: every request is that much older."""
        self.stamps[:] = [t - seconds for t in self.stamps]
        self.moved += seconds


def _parsed(text: str) -> Budget:
    try:
        data = json.loads(text or "[]")
        if isinstance(data, list):  # the format before clock moves: the stamps alone
            return Budget([float(t) for t in data])
        return Budget([float(t) for t in data["stamps"]], float(data["moved"]))
    except (ValueError, TypeError, KeyError):
        return Budget()


class SharedWindow:
    """At most `limit` requests in any `period` seconds, counted in a file under an exclusive
    lock, so that parallel workers hitting one rate-limited endpoint stay below its limit
    together. With `advance` (the target's clock control), a full window is crossed by moving
    the target's clock instead of waiting."""

    def __init__(
        self, path: Path, limit: int, period: float, *, advance: Advance | None = None
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"a budget of {limit} per {period}s admits nothing")
        self.path = path
        self.limit = limit
        self.period = period + MARGIN_SECONDS
        self.advance = advance
        self.moves = 0
        """How many times this process moved the target's clock."""
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot (or move the target's clock to one) and take it; returns the seconds
        waited or moved."""
        waited = 0.0
        while True:
            with self._locked() as budget:
                now = time.time()
                recent = [t for t in budget.stamps if now - self.period < t <= now]
                budget.stamps[:] = recent
                if len(recent) < self.limit:
                    budget.stamps.append(now)
                    return waited
                delay = recent[0] + self.period - now
                move = max(delay, 0.0) + MOVE_MARGIN_SECONDS
                if self._move(budget, move):
                    waited += move
                    continue
            pause = min(max(delay, 0.005), self.period)
            time.sleep(pause)
            waited += pause

    def cross(self, seconds: float) -> bool:
        """Let `seconds` (a Retry-After, at most MAX_CROSS_SECONDS) pass for the target by moving
        its clock; False when there is no clock control or the move failed (then wait)."""
        if self.advance is None or not 0 < seconds <= MAX_CROSS_SECONDS:
            return False
        with self._locked() as budget:
            return self._move(budget, seconds)

    def moved(self) -> float:
        """The seconds the target's clock was moved forward through this budget, by any process
        of any run: a token's age on the target is its age here plus what was moved since."""
        with self._locked(write=False) as budget:
            return budget.moved

    def moved_outside(self, seconds: float) -> None:
        """The target's clock was moved forward `seconds` by a check itself (a token's expiry,
        a burst; D230): the requests counted, and the tokens issued, are that much older."""
        with self._locked() as budget:
            budget.shift(seconds)

    def stamps(self) -> list[float]:
        """The stamps of the requests counted (this machine's time, as the target sees them)."""
        with self._locked(write=False) as budget:
            return list(budget.stamps)

    def _move(self, budget: Budget, seconds: float) -> bool:
        if self.advance is None or not self.advance(seconds):
            return False
        budget.shift(seconds)
        self.moves += 1
        return True

    @contextmanager
    def _locked(self, *, write: bool = True) -> Iterator[Budget]:
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as handle:
                    budget = _parsed(handle.read())
                    yield budget
                    if not write:
                        return
                    handle.seek(0)
                    handle.truncate()
                    handle.write(json.dumps({"stamps": budget.stamps, "moved": budget.moved}))
            finally:
                os.close(fd)  # closing the descriptor releases the lock


def clock_mover(session: requests.Session, url: str) -> Advance:
    """Moves a target's clock through its clock control (`POST {url}/clock`,
    contracts/admin.yaml); a move that fails is False (the window is then waited out)."""
    endpoint = url.rstrip("/") + "/clock"

    def advance(seconds: float) -> bool:
        try:
            response = session.post(endpoint, json={"advance_seconds": seconds}, timeout=10)
        except requests.RequestException:
            return False
        return response.status_code == 200

    return advance


def token_age(window: SharedWindow, issued: float, moved: float) -> float:
    """How old a token issued at `issued` (time.monotonic()) is on the target's clock, the
    window's clock moves since then included (`moved`: the window's `moved()` at its issue)."""
    age = time.monotonic() - issued
    if window.advance is not None:
        age += window.moved() - moved
    return age
