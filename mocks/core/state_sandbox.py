"""Sandboxes across the workers of `serve --workers N` (N > 1): one registry for all (D217).

`SharedSandboxRegistry` is made by the parent before it forks. What a sandbox *is* lives in the
shared state: its id, creation parameters, signing key, folder and slot in a SQLite table; its
last use (monotonic and wall time) in a shared page, one slot per live sandbox; a generation
counter that moves whenever a sandbox is created or ended. What a sandbox *holds* is built by
each worker on its first request for it (D126's lazy build, per worker): each mock's app with a
`SharedState` of its own, attached by path in the sandbox's own folder (D218), so its clock,
faults, rate windows, journal, users and tokens are shared by the workers as the default
space's are. A worker that sees the generation move drops its copies of the sandboxes ended
elsewhere (D219). Every decision (the 32 limit, an idle end, a DELETE) is taken under the
registry's one process-shared lock.
"""

from __future__ import annotations

import math
import mmap
import os
import secrets
import shutil
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask

from pepharness.mocks.core.sandbox import (
    DEFAULT_IDLE_SECONDS,
    MAX_SANDBOXES,
    Build,
    Sandbox,
    SandboxRegistry,
    logger,
    too_many,
)
from pepharness.mocks.core.state import SharedState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY, slot INTEGER NOT NULL, idle_seconds REAL NOT NULL,
    created TEXT NOT NULL, secret TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS urls (mock TEXT PRIMARY KEY, url TEXT NOT NULL, rank INTEGER);
"""
_GENERATION = struct.Struct("q")
_USED = struct.Struct("dd")  # a slot's last use: monotonic (shared by the machine), wall


@dataclass(frozen=True)
class _Row:
    id: str
    slot: int
    idle_seconds: float
    created: datetime
    secret: str


class SharedSandboxRegistry(SandboxRegistry):
    """The sandboxes of every worker of one `serve` (D217); made before the fork in `folder`
    (the workers' shared-state folder), each sandbox's state in `folder/sandbox-<id>`."""

    def __init__(self, build: Build, folder: str, *, limit: int = MAX_SANDBOXES) -> None:
        super().__init__(build, limit=limit)
        self.folder = folder
        self._state = SharedState(f"{folder}/sandboxes.sqlite3")
        self._page = mmap.mmap(-1, _GENERATION.size + limit * _USED.size)
        with self._state.lock:
            self._state.db().executescript(_SCHEMA)
            self._state.close()  # none opened before the fork
        self._seen = -1
        self._due = 0.0
        """No sandbox ends before this (monotonic): the last scan's earliest idle end."""
        self._rows: dict[str, _Row] = {}
        self._copies: dict[str, Sandbox] = {}
        """This process's copies of live sandboxes (the apps it built for them)."""

    # -- the shared page (hold the lock to write) --------------------------------------------

    def _generation(self) -> int:
        value: int = _GENERATION.unpack_from(self._page, 0)[0]
        return value

    def _moved(self) -> None:
        _GENERATION.pack_into(self._page, 0, self._generation() + 1)

    def _used(self, slot: int) -> tuple[float, float]:
        at = _GENERATION.size + slot * _USED.size
        used: tuple[float, float] = _USED.unpack_from(self._page, at)
        return used

    def _touch(self, slot: int, wall: float | None = None) -> None:
        _USED.pack_into(
            self._page, _GENERATION.size + slot * _USED.size, time.monotonic(),
            time.time() if wall is None else wall,
        )

    # -- under the lock ----------------------------------------------------------------------

    def _refresh(self) -> list[Sandbox]:
        """The live sandboxes and base URLs again when the generation moved; this process's
        copies of the ended ones taken out (the caller ends them after the lock)."""
        generation = self._generation()
        if generation == self._seen:
            return []
        db = self._state.db()
        self._rows = {
            row[0]: _Row(row[0], row[1], row[2], datetime.fromisoformat(row[3]), row[4])
            for row in db.execute(
                "SELECT id, slot, idle_seconds, created, secret FROM sandboxes"
            )
        }
        self.base_urls = dict(db.execute("SELECT mock, url FROM urls ORDER BY rank").fetchall())
        self._seen = generation
        self._due = 0.0  # the idle ends scanned again: a sandbox may be new
        gone = [copy for key, copy in self._copies.items() if key not in self._rows]
        for copy in gone:
            del self._copies[copy.id]
        return gone

    def _remove(self, row: _Row) -> None:
        self._state.db().execute("DELETE FROM sandboxes WHERE id = ?", (row.id,))
        shutil.rmtree(self._folder(row.id), ignore_errors=True)
        self._moved()

    def _access(self) -> list[Sandbox]:
        """Every access: the registry as the workers left it, idle sandboxes ended (D127)."""
        gone = self._refresh()
        now = time.monotonic()
        if now < self._due:  # no sandbox can be idle yet (a use only puts its end later)
            return gone
        ends = {row.id: self._used(row.slot)[0] + row.idle_seconds for row in self._rows.values()}
        idle = [row for row in self._rows.values() if now >= ends[row.id]]
        for row in idle:
            self._remove(row)
        if idle:
            gone += self._refresh()
        self._due = min((ends[key] for key in self._rows), default=math.inf)
        return gone

    def _folder(self, sandbox_id: str) -> str:
        return f"{self.folder}/sandbox-{sandbox_id}"

    def _sandbox(self, row: _Row) -> Sandbox:
        """The sandbox of `row` as it is now (a copy of this process's, or a view)."""
        sandbox = Sandbox(
            row.id, _shown_seconds(row.idle_seconds), self.base_urls,
            secret=row.secret, folder=self._folder(row.id),
        )
        sandbox.created = row.created
        sandbox.used_at, wall = self._used(row.slot)
        sandbox.last_used = datetime.fromtimestamp(wall, UTC)
        return sandbox

    # -- the registry's operations ----------------------------------------------------------

    def bind(self, base_urls: Mapping[str, str]) -> None:
        with self._state.lock:
            db = self._state.db()
            db.execute("DELETE FROM urls")
            db.executemany(
                "INSERT INTO urls (mock, url, rank) VALUES (?, ?, ?)",
                [(mock, url, rank) for rank, (mock, url) in enumerate(base_urls.items())],
            )
            self._moved()
            self.base_urls = dict(base_urls)

    def create(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> Sandbox:
        with self._state.lock:
            gone = self._access()
            row, sandbox = None, None
            if len(self._rows) < self.limit:
                sandbox_id = secrets.token_urlsafe(9)
                while sandbox_id in self._rows:
                    sandbox_id = secrets.token_urlsafe(9)
                taken = {row.slot for row in self._rows.values()}
                slot = min(set(range(self.limit)) - taken)
                os.mkdir(self._folder(sandbox_id), 0o700)
                row = _Row(
                    sandbox_id, slot, float(idle_seconds), datetime.now(UTC),
                    secrets.token_hex(32),
                )
                self._state.db().execute(
                    "INSERT INTO sandboxes (id, slot, idle_seconds, created, secret) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (row.id, row.slot, row.idle_seconds, row.created.isoformat(), row.secret),
                )
                self._touch(slot, row.created.timestamp())  # last_used == created at first
                self._moved()
                self._refresh()
                sandbox = self._sandbox(row)
        self._end(gone)
        if sandbox is None:
            raise too_many(self.limit)
        logger.info("sandbox %s created", sandbox.id)
        return sandbox

    def sandboxes(self) -> list[Sandbox]:
        with self._state.lock:
            gone = self._access()
            live = sorted(
                (self._sandbox(row) for row in self._rows.values()),
                key=lambda sandbox: sandbox.created,
            )
        self._end(gone)
        return live

    def get(self, sandbox_id: str) -> Sandbox | None:
        with self._state.lock:
            gone = self._access()
            row = self._rows.get(sandbox_id)
            sandbox = None if row is None else self._sandbox(row)
        self._end(gone)
        return sandbox

    def use(self, sandbox_id: str, mock: str) -> Flask | None:
        with self._state.lock:
            gone = self._access()
            row = self._rows.get(sandbox_id)
            copy = None
            if row is not None:
                self._touch(row.slot)
                copy = self._copies.get(sandbox_id)
                if copy is None:
                    copy = self._copies[sandbox_id] = self._sandbox(row)
        self._end(gone)
        return None if copy is None else copy.app(mock, self._build)

    def end(self, sandbox_id: str) -> Sandbox | None:
        with self._state.lock:
            gone = self._access()
            row = self._rows.get(sandbox_id)
            sandbox = None
            if row is not None:
                sandbox = self._sandbox(row)
                self._remove(row)
                gone += self._refresh()
        self._end(gone)
        if sandbox is not None:
            logger.info("sandbox %s ended", sandbox.id)
        return sandbox

    def close(self) -> None:
        """This process's copies dropped (the parent has none; its folder goes with the
        workers' shared state)."""
        copies, self._copies = list(self._copies.values()), {}
        self._end(copies)


def _shown_seconds(value: float) -> float:
    return int(value) if float(value).is_integer() else value
