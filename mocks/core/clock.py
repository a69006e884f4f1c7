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

FIRST_YEAR, LAST_YEAR = 1970, 9998
"""The years a clock may be `set` to, as written (D73); its offset may take the instant up to
23:59 beyond, hence the range below. A year of headroom stays under `datetime.max` for every
"now + lifetime" a mock computes."""
EARLIEST = datetime(FIRST_YEAR - 1, 12, 31, tzinfo=UTC)
LATEST = datetime(LAST_YEAR + 1, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)
"""The range a clock may be set or advanced to."""
MAX_ADVANCE_SECONDS = 260_000_000_000
"""The largest move of one `advance` either way: more than the whole range."""
SETTABLE = re.compile(
    r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
    r"[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-5][0-9]",
    re.ASCII,
)
"""The start of a date-time that `POST /__admin/clock {"set": …}` takes (admin.yaml's pattern):
a year from 1970 to 9998 and no leap second."""


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
        """Move the clock by `seconds` (negative moves it back), at most MAX_ADVANCE_SECONDS
        either way; a move past EARLIEST or LATEST stops there (D73). Returns the new now."""
        if not math.isfinite(seconds) or abs(seconds) > MAX_ADVANCE_SECONDS:
            raise ValueError(
                f"advance_seconds must be a number from {-MAX_ADVANCE_SECONDS} to "
                f"{MAX_ADVANCE_SECONDS}, not {seconds!r}"
            )
        with self._lock:
            source = self._source()
            now = source + self._offset
            if seconds >= (LATEST - now).total_seconds():
                moved = LATEST
            elif seconds <= (EARLIEST - now).total_seconds():
                moved = EARLIEST
            else:
                moved = now + timedelta(seconds=seconds)
            self._offset = moved - source
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
