"""A bounded request journal that never stores a secret: no header values, no credentials."""

from __future__ import annotations

import functools
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pepharness.mocks.core.clock import to_rfc3339

REDACTED = "***"
SECRET_KEY_PARTS = ("password", "secret", "token")
AUTH_SCHEMES = ("basic", "bearer")

Query = dict[str, str | list[str]]


@functools.lru_cache(maxsize=1024)
def is_secret_key(key: str) -> bool:
    """Whether a query parameter named `key` carries a secret."""
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def redact_query(pairs: Iterable[tuple[str, str]]) -> Query:
    """Query pairs as a dict (a repeated key keeps a list), secret values replaced by `***`."""
    query: Query = {}
    for key, value in pairs:
        shown = REDACTED if is_secret_key(key) else value
        current = query.get(key)
        if current is None:
            query[key] = shown
        elif isinstance(current, list):
            current.append(shown)
        else:
            query[key] = [current, shown]
    return query


_REDACTED: dict[bytes, tuple[Query, bool]] = {}
REDACTED_CACHE_SIZE = 1024
REDACTED_CACHE_MAX_QUERY = 2048


def redact_query_string(raw: bytes, pairs: Callable[[], Iterable[tuple[str, str]]]) -> Query:
    """`redact_query(pairs())`, where `pairs()` are the pairs decoded from the query string
    `raw`: a query string seen before is not decoded again (D181). A fresh dict every time."""
    if not raw:
        return {}
    known = _REDACTED.get(raw)
    if known is None:
        query = redact_query(pairs())
        known = query, any(isinstance(value, list) for value in query.values())
        if len(raw) <= REDACTED_CACHE_MAX_QUERY:
            if len(_REDACTED) >= REDACTED_CACHE_SIZE:
                _REDACTED.clear()  # bounded, whatever queries arrive
            _REDACTED[raw] = known
    query, repeated = known
    if repeated:
        return {
            key: list(value) if isinstance(value, list) else value for key, value in query.items()
        }
    return dict(query)


@functools.lru_cache(maxsize=64)
def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


def environ_header(environ: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A header's value by name, read from a WSGI environ as werkzeug's `request.headers.get`
    reads it, without building the name's environ key again for every request."""
    return lambda name: environ.get(_environ_key(name))


def auth_kind(header: Callable[[str], str | None]) -> str | None:
    """Which credential a request carried, never its value: `basic`, `bearer` or
    `authorization` (another scheme) for the Authorization header, else `jwt-auth` (Sinatra)
    or `x-authorization` (PEP Frontend), else None. `header` looks a header up by name."""
    authorization = header("Authorization")
    if authorization is not None:
        scheme = authorization.strip().split(" ", 1)[0].lower()
        return scheme if scheme in AUTH_SCHEMES else "authorization"
    for name in ("jwt-auth", "x-authorization"):
        if header(name) is not None:
            return name
    return None


def describe_error(error: BaseException) -> dict[str, str]:
    """An unexpected exception as data: its type, message and formatted traceback."""
    return {
        "type": f"{type(error).__module__}.{type(error).__qualname__}",
        "message": str(error),
        "traceback": "".join(traceback.format_exception(error)),
    }


@dataclass(frozen=True)
class JournalEntry:
    """One request as the journal keeps it."""

    id: int
    time: str
    method: str
    path: str
    query: Query
    status: int
    duration_ms: float
    fault: bool
    auth: str | None
    error: dict[str, str] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "fault": self.fault,
            "auth": self.auth,
            "error": self.error,
        }


class Journal:
    """The last `maxlen` requests of a service, oldest first. Thread-safe."""

    def __init__(self, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"a journal keeps at least one entry, not {maxlen}")
        self._entries: deque[JournalEntry] = deque(maxlen=maxlen)
        self._next_id = 1
        self._lock = threading.Lock()

    @property
    def maxlen(self) -> int:
        return self._entries.maxlen or 0

    def record(
        self,
        *,
        when: datetime,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] | Query,
        status: int,
        duration_ms: float,
        fault: bool = False,
        auth: str | None = None,
        error: BaseException | None = None,
    ) -> JournalEntry:
        """Keep one request; secret query values are redacted here, whoever the caller (a
        `Query` dict is one `redact_query` or `redact_query_string` already redacted)."""
        # Everything but the id is made outside the lock: `_keep` only numbers and keeps.
        return self._keep({
            "time": to_rfc3339(when),
            "method": method,
            "path": path,
            "query": query if isinstance(query, dict) else redact_query(query),
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "fault": fault,
            "auth": auth,
            "error": describe_error(error) if error is not None else None,
        })

    def _keep(self, fields: dict[str, Any]) -> JournalEntry:
        """Number the entry of `fields` and keep it (a shared journal keeps it elsewhere)."""
        with self._lock:
            entry = JournalEntry(id=self._next_id, **fields)
            self._next_id += 1
            self._entries.append(entry)
        return entry

    def entries(self, limit: int | None = None) -> list[JournalEntry]:
        """The kept requests, oldest first; with `limit`, only the most recent `limit`."""
        with self._lock:
            kept = list(self._entries)
        if limit is not None:
            kept = kept[-limit:] if limit > 0 else []
        return kept

    def clear(self) -> None:
        """Forget every request (ids keep counting, so an id is never reused)."""
        with self._lock:
            self._entries.clear()

    def reset(self) -> None:
        """Forget every request and number the next one 1 again."""
        with self._lock:
            self._entries.clear()
            self._next_id = 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
