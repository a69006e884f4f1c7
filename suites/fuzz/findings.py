"""Findings, not noise: what broke, deduplicated by (operation, kind, status), each keeping the
smallest request that reproduces it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
SLOW = "slow"
ORDER = (SERVER_ERROR, TIMEOUT, CONNECTION_ERROR, SLOW)
"""How findings are listed: these kinds first, the contract's checks after."""
EXCERPT_LIMIT = 1000
"""Characters of a server error's body a finding keeps to show (the HAR entry keeps 16 KiB)."""


def key_of(operation: str, kind: str, status: int | None) -> str:
    return f"{operation}|{kind}|{status if status is not None else '-'}"


def size_of(entry: Mapping[str, Any]) -> int:
    """How big a recorded request is: its URL and body, what a person reads to reproduce it."""
    request = entry["request"]
    return len(request["url"]) + len(request.get("postData", {}).get("text", ""))


@dataclass
class Finding:
    operation: str
    kind: str
    status: int | None
    title: str
    message: str
    first_index: int
    first_seconds: float
    curl: str
    entry: dict[str, Any]
    count: int = 1
    key: str = field(default="")
    answer_status: int | None = None
    """The status of the kept request's answer (a slow finding's key has none); None when no
    answer came."""
    excerpt: str = ""
    """The start of a server error's body, as text (at most EXCERPT_LIMIT characters)."""

    def __post_init__(self) -> None:
        self.key = key_of(self.operation, self.kind, self.status)

    def to_json(self, *, with_entry: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not with_entry:
            data.pop("entry")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        fields = {k: data[k] for k in (
            "operation", "kind", "status", "title", "message", "first_index", "first_seconds",
            "curl", "entry", "count",
        )}
        return cls(**fields, answer_status=data.get("answer_status"),
                   excerpt=str(data.get("excerpt") or ""))


class Findings:
    """The run's findings by key; thread-safe."""

    def __init__(self) -> None:
        self._by_key: dict[str, Finding] = {}
        self._lock = threading.Lock()

    def add(self, finding: Finding) -> bool:
        """Record `finding`; True when its key is new. A smaller request of a known key
        replaces the kept one; the first sighting stays the first."""
        with self._lock:
            known = self._by_key.get(finding.key)
            if known is None:
                self._by_key[finding.key] = finding
                return True
            known.count += finding.count
            if finding.first_index < known.first_index:
                known.first_index = finding.first_index
            known.first_seconds = min(known.first_seconds, finding.first_seconds)
            if size_of(finding.entry) < size_of(known.entry):
                known.entry, known.curl = finding.entry, finding.curl
                known.title, known.message = finding.title, finding.message
                known.answer_status, known.excerpt = finding.answer_status, finding.excerpt
            return False

    def merge(self, others: Iterable[Finding]) -> None:
        for finding in others:
            self.add(finding)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

    def sorted(self) -> list[Finding]:
        with self._lock:
            found = list(self._by_key.values())

        def rank(finding: Finding) -> tuple[int, str, str]:
            kind = ORDER.index(finding.kind) if finding.kind in ORDER else len(ORDER)
            return kind, finding.operation, str(finding.status)

        return sorted(found, key=rank)

    def to_json(self) -> list[dict[str, Any]]:
        return [finding.to_json() for finding in self.sorted()]


def excerpt(content: bytes, limit: int = EXCERPT_LIMIT) -> str:
    """The start of a body as text (undecodable bytes replaced), and how long it was."""
    text = content[: limit * 4].decode("utf-8", "replace")
    if len(text) > limit or len(content) > limit * 4:
        return f"{text[:limit]}… ({len(content):,} bytes in all)"
    return text


def one_line(text: str, limit: int = 200) -> str:
    """`text` on one line for the console, control characters shown as `?`, at most `limit`
    characters."""
    flat = "".join(" " if c in "\r\n\t" else "?" if not c.isprintable() else c for c in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
