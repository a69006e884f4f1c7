"""The service clock: real time plus an offset that the admin API moves; RFC 3339 helpers."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The range a clock may be set or advanced to (D73): no negative Unix times for JWTs, and a
year of headroom under `datetime.max` for every "now + lifetime" a mock computes."""


def real_now() -> datetime:
    """The machine's time, tz-aware UTC: the default source of a `Clock`."""
    return datetime.now(UTC)


class Clock:
    """Real time plus an offset: after `advance` or `set`, time keeps flowing from there.

    Everything of a mock that reads "now" (token expiry, "today", history windows, rate-limit
    windows) reads it here, so one admin call moves all of them together. Thread-safe.
    """

    def __init__(self, source: Callable[[], datetime] = real_now) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The service's current time, tz-aware UTC."""
        with self._lock:
            offset = self._offset
        return (self._source() + offset).astimezone(UTC)

    @property
    def offset(self) -> timedelta:
        """How far the service clock is ahead of real time (negative when behind)."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> datetime:
        """Move the clock by `seconds` (negative moves it back); returns the new now."""
        if not math.isfinite(seconds):
            raise ValueError(f"cannot advance the clock by {seconds!r} seconds")
        with self._lock:
            try:
                offset = self._offset + timedelta(seconds=seconds)
                moved = self._source() + offset
            except OverflowError:
                moved = None
            if moved is None or not EARLIEST <= moved <= LATEST:
                raise ValueError(
                    f"advancing by {seconds!r} seconds moves the clock out of range "
                    f"({to_rfc3339(EARLIEST)} to {to_rfc3339(LATEST)})"
                ) from None
            self._offset = offset
        return moved.astimezone(UTC)

    def set(self, when: datetime) -> datetime:
        """Make `when` (tz-aware) the current time; returns it in UTC."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"{when.isoformat()} has no UTC offset")
        if not EARLIEST <= when <= LATEST:
            raise ValueError(
                f"{when.isoformat()} is out of range "
                f"({to_rfc3339(EARLIEST)} to {to_rfc3339(LATEST)})"
            )
        with self._lock:
            try:
                self._offset = when - self._source()
            except OverflowError:
                raise ValueError(f"{when.isoformat()} is out of range") from None
        return when.astimezone(UTC)

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = timedelta(0)


def to_rfc3339(when: datetime) -> str:
    """`when` as an RFC 3339 date-time in UTC with millisecond precision and a `Z`."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (offset required, `Z` allowed), as tz-aware UTC.

    Raises ValueError for anything else, including ISO 8601 forms RFC 3339 does not allow
    (a date alone, no offset, week dates).
    """
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with an offset")
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a valid date-time") from None
