"""What callers sent the identity endpoint, kept so a checker can see what a PEP sends.

Secrets never stay: `identityToken` keeps its first 4 characters, any other key naming a
password, secret or token is `***`, and headers are kept by name only.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from pepharness.mocks.core.clock import Clock, to_rfc3339
from pepharness.mocks.core.journal import REDACTED, is_secret_key
from pepharness.mocks.core.state import SharedRing, SharedState

IDENTITY_TOKEN = "identityToken"
SHOWN_TOKEN_CHARS = 4


def redact_token(value: Any) -> Any:
    """An identity token cut to its first characters; any other value as it is."""
    return value[:SHOWN_TOKEN_CHARS] + REDACTED if isinstance(value, str) else value


def redact(value: Any) -> Any:
    """A JSON value with every secret replaced (recursively)."""
    if isinstance(value, dict):
        return {
            key: redact_token(item)
            if key == IDENTITY_TOKEN
            else REDACTED
            if is_secret_key(key)
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as received: its JSON body redacted, its header names, the answer's status."""

    id: int
    time: str
    method: str
    path: str
    status: int
    content_type: str | None
    headers: tuple[str, ...]
    size: int
    keys: tuple[str, ...] | None
    body: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "contentType": self.content_type,
            "headers": list(self.headers),
            "size": self.size,
            "keys": None if self.keys is None else list(self.keys),
            "body": self.body,
        }


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


class Received:
    """The last `maxlen` requests to the identity endpoint, oldest first. Thread-safe."""

    def __init__(self, clock: Clock, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"keep at least one received request, not {maxlen}")
        self.clock = clock
        self._entries: deque[ReceivedRequest] = deque(maxlen=maxlen)
        self._next_id = 1
        self._lock = threading.Lock()

    def record(
        self,
        *,
        method: str,
        path: str,
        status: int,
        content_type: str | None,
        header_names: Iterable[str],
        raw: bytes | None,
        size: int | None = None,
    ) -> ReceivedRequest:
        """Keep one request; `raw` None: its body was too large to read (`size` says how
        large it claimed to be)."""
        body = None if raw is None else _parse(raw)
        return self._keep(ReceivedRequest(
            id=0,  # numbered by `_keep`
            time=to_rfc3339(self.clock.now()),
            method=method,
            path=path,
            status=status,
            content_type=content_type,
            headers=tuple(sorted({name.lower() for name in header_names})),
            size=len(raw) if raw is not None else (size or 0),
            keys=tuple(body) if isinstance(body, dict) else None,
            body=redact(body),
        ))

    def _keep(self, request: ReceivedRequest) -> ReceivedRequest:
        """Number `request` and keep it (the workers' shared ring keeps it elsewhere)."""
        with self._lock:
            entry = replace(request, id=self._next_id)
            self._next_id += 1
            self._entries.append(entry)
        return entry

    def entries(self, limit: int | None = None) -> list[ReceivedRequest]:
        with self._lock:
            kept = list(self._entries)
        return kept[-limit:] if limit is not None else kept

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
            self._next_id = 1


class SharedReceived(Received):
    """`Received` in a `SharedRing`: every worker's identity requests, once, in order (D205)."""

    def __init__(self, state: SharedState, clock: Clock, maxlen: int = 1000) -> None:
        super().__init__(clock, maxlen)
        self._ring = SharedRing(state, "received", maxlen)

    def _keep(self, request: ReceivedRequest) -> ReceivedRequest:
        document = request.to_json()
        return _request(self._ring.append(document), document)

    def entries(self, limit: int | None = None) -> list[ReceivedRequest]:
        return [_request(number, document) for number, document in self._ring.documents(limit)]

    def reset(self) -> None:
        self._ring.reset()


def _request(number: int, document: dict[str, Any]) -> ReceivedRequest:
    keys = document["keys"]
    return ReceivedRequest(
        id=number,
        time=document["time"],
        method=document["method"],
        path=document["path"],
        status=document["status"],
        content_type=document["contentType"],
        headers=tuple(document["headers"]),
        size=document["size"],
        keys=None if keys is None else tuple(keys),
        body=document["body"],
    )
