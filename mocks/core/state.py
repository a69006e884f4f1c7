"""The state a mock's worker processes share (`serve --workers N`, N > 1), exact across them.

A `SharedState` is made by the parent before it forks its workers (D197): an anonymous shared
memory page of counters (the clock's offset, ids, generations, the fault draws) and one
process-shared lock, inherited by every worker, shared-memory rings for the journals (D204),
and a SQLite file (WAL, on tmpfs) for what has a size (fault rules, the rate-limit logs, users
and tokens added through `/__admin`), opened again by each process. Every
change and every read that decides something happens under that one lock, so N workers behave
as one process: a clock move is seen by the next `now()` of every worker, a rule's `times`
counts every worker's matches, a window admits exactly its limit, the journal has every request
once, in the order they were recorded.

The classes here are the core's own (`Clock`, `FaultRegistry`, `Journal`, `RateLimiter`) with
their storage moved to the shared state; one process (N = 1) never builds them (D198).
"""

from __future__ import annotations

import builtins
import fcntl
import json
import mmap
import multiprocessing
import os
import random
import sqlite3
import struct
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pyrate_limiter import InMemoryBucket, RateItem

from pepharness.mocks.core.clock import Clock, real_now
from pepharness.mocks.core.faults import Fault, FaultRegistry, FaultRule, FaultRuleError, parse_rule
from pepharness.mocks.core.journal import Journal, JournalEntry
from pepharness.mocks.core.ratelimit import RateDecision, RateLimiter, _checked

# The counters' slots in the shared page (8 bytes each).
_CLOCK_OFFSET_US = 0
_FAULT_GENERATION = 1
_FAULT_DRAWS = 2
_FAULT_NEXT_ID = 3
_RATE_GENERATION = 5
_RATE_LIMIT = 6
_RATE_PERIOD = 7  # a double
_FAULT_COUNT = 8
_RECORDS_GENERATION = 9
_CLOCK_SEQUENCE = 10  # odd while the offset is being written
JTI_DRAWS = 11  # the PEP's session ids: draws made, then the sequence's epoch (D208)
TASK_DRAWS = 13  # the PEP's migration task ids: the same two slots
_MADE = 15  # 1 once the counters that do not start at 0 were set
_SLOTS = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY, rule TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS long (
    ring TEXT NOT NULL, id INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (ring, id)
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hits (
    key TEXT PRIMARY KEY, newest INTEGER NOT NULL, stamps TEXT NOT NULL
);
"""


def state_folder() -> str:
    """Where shared-state files go: tmpfs (/dev/shm) when the machine has it."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else ""


class FileRLock:
    """A re-entrant lock across the processes opening the same file, made after a fork (a
    sandbox's copy, D217): a thread lock within the process, `flock` on the process's own
    descriptor of the file across processes (held while the thread holds the lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.RLock()
        self._depth = 0
        self._fd = -1
        self._pid = -1

    def _descriptor(self) -> int:
        if self._pid != os.getpid():  # a descriptor of its own: flock is per open file
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> bool:
        self._local.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
            except BaseException:
                self._local.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd, self._pid = -1, -1


class SharedState:
    """The counters, the lock and the SQLite file one mock's workers share; build it before
    forking. `lock` guards every use of `db()` and every read-modify-write of a counter."""

    def __init__(self, path: str, *, attach: bool = False) -> None:
        self.path = path
        self.attached = attach
        """Opened by path in a worker after the fork (a sandbox's copy, D217): the page and
        rings are files beside `path`, the lock a file lock; another worker may have made
        them and used them already, so nothing is reset."""
        self.lock: Any
        self.serial: Any
        if attach:
            self.lock = FileRLock(path + ".lock")
            self.serial = FileRLock(path + ".serial")
        else:
            # Re-entrant: the rate limiter reads the (shared) clock while it holds the lock.
            self.lock = multiprocessing.get_context("fork").RLock()
            # For longer exclusive work across workers (the PEP's player writes, D208), so
            # that `lock`, taken by every request's journal record, stays short.
            self.serial = multiprocessing.get_context("fork").Lock()
        self._page = self.memory("page", _SLOTS * 8)
        self._pid = -1
        self._db: sqlite3.Connection | None = None
        self._inherited: sqlite3.Connection | None = None
        self._rings: dict[str, SharedRing] = {}
        with self.lock:
            if not self.get(_MADE):
                self.db().executescript(_SCHEMA)
                self.set(_FAULT_NEXT_ID, 1)
                self.set(_MADE, 1)
            if not attach:
                self.close()

    def memory(self, name: str, size: int) -> mmap.mmap:
        """`size` bytes of memory every worker sees (zeros at first): anonymous, inherited
        through the fork; attached, the file `<path>.<name>` (on tmpfs) mapped by each."""
        if not self.attached:
            return mmap.mmap(-1, size)
        fd = os.open(f"{self.path}.{name}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # the same size whoever comes first: zeros
            return mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def ring(self, name: str, maxlen: int) -> SharedRing:
        """The ring `name` of `maxlen` slots: the one made before the fork when there is one
        (an app built in each worker after the fork finds its journal there, D207)."""
        ring = self._rings.get(name)
        if ring is None or ring.maxlen != maxlen:
            ring = self._rings[name] = SharedRing(self, name, maxlen)
        return ring

    def get(self, slot: int) -> int:
        value: int = struct.unpack_from("q", self._page, slot * 8)[0]
        return value

    def set(self, slot: int, value: int) -> None:
        struct.pack_into("q", self._page, slot * 8, value)

    def get_float(self, slot: int) -> float:
        value: float = struct.unpack_from("d", self._page, slot * 8)[0]
        return value

    def set_float(self, slot: int, value: float) -> None:
        struct.pack_into("d", self._page, slot * 8, value)

    @property
    def records_generation(self) -> int:
        """Changes whenever a record is added or a kind cleared (read without the lock)."""
        return self.get(_RECORDS_GENERATION)

    def add_record(self, kind: str, data: Any) -> None:
        """Keep `data` (JSON) as the next record of `kind`, e.g. a user added through the
        admin API; hold `lock`."""
        self.db().execute(
            "INSERT INTO records (kind, data) VALUES (?, ?)", (kind, json.dumps(data))
        )
        self.set(_RECORDS_GENERATION, self.get(_RECORDS_GENERATION) + 1)

    def records(self, kind: str) -> builtins.list[Any]:
        """Every record of `kind`, in the order added; hold `lock`."""
        rows = self.db().execute(
            "SELECT data FROM records WHERE kind = ? ORDER BY seq", (kind,)
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def clear_records(self, kind: str) -> None:
        """Forget every record of `kind`; hold `lock`."""
        self.db().execute("DELETE FROM records WHERE kind = ?", (kind,))
        self.set(_RECORDS_GENERATION, self.get(_RECORDS_GENERATION) + 1)

    def db(self) -> sqlite3.Connection:
        """This process's connection (opened on first use after a fork); hold `lock`."""
        if self._db is None or self._pid != os.getpid():
            # The parent's connection, if any, is kept unused: closing a connection inherited
            # through a fork could touch the file's locks and WAL under the parent.
            self._inherited = self._db
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA busy_timeout=10000")
            self._db, self._pid = db, os.getpid()
        return self._db

    def close(self) -> None:
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None
        if isinstance(self.lock, FileRLock):
            self.lock.close()


class SharedClock(Clock):
    """A `Clock` whose offset is in the shared page: a move is every worker's next `now()`.

    Moves are made under the state's lock; `now()` reads without it, as a sequence lock: the
    sequence is odd while a move writes, and a read that saw it change reads again."""

    def __init__(self, state: SharedState, source: Any = real_now) -> None:
        self._source = source
        self._state = state
        self._lock = state.lock

    def now(self) -> datetime:
        return (self._source() + self._offset).astimezone(UTC)

    @property
    def _offset(self) -> timedelta:
        state = self._state
        while True:
            before = state.get(_CLOCK_SEQUENCE)
            micros = state.get(_CLOCK_OFFSET_US)
            if before % 2 == 0 and state.get(_CLOCK_SEQUENCE) == before:
                return timedelta(microseconds=micros)

    @_offset.setter
    def _offset(self, value: timedelta) -> None:  # under the lock: one writer at a time
        state = self._state
        state.set(_CLOCK_SEQUENCE, state.get(_CLOCK_SEQUENCE) + 1)
        state.set(_CLOCK_OFFSET_US, value // timedelta(microseconds=1))
        state.set(_CLOCK_SEQUENCE, state.get(_CLOCK_SEQUENCE) + 1)


def _rule_of(data: dict[str, Any]) -> FaultRule:
    return FaultRule(
        data["id"], data["path"], data["method"], data["status"], data["body"],
        data["latency_ms"], data["probability"], data["times"], data["fault"],
        tuple(data["headers"].items()),
    )


class SharedFaults(FaultRegistry):
    """A `FaultRegistry` whose rules are in the shared file and whose probabilities are drawn
    from one seeded sequence for all workers: the k-th draw of any worker is the k-th value of
    `random.Random(seed)`, as in one process (D199)."""

    def __init__(self, state: SharedState, seed: int = 0) -> None:
        super().__init__(seed)
        self._state = state
        self._drawn = 0
        self._seen = -1
        self._cached: builtins.list[FaultRule] = []

    def _rules_now(self) -> builtins.list[FaultRule]:
        rows = self._state.db().execute("SELECT rule FROM faults ORDER BY id").fetchall()
        return [_rule_of(json.loads(row[0])) for row in rows]

    def _changed(self) -> None:
        self._state.set(_FAULT_GENERATION, self._state.get(_FAULT_GENERATION) + 1)

    def add_all(self, rules: Sequence[object]) -> builtins.list[FaultRule]:
        with self._state.lock:
            first = self._state.get(_FAULT_NEXT_ID)
            parsed = []
            for offset, rule in enumerate(rules):
                try:
                    parsed.append(parse_rule(rule, first + offset))
                except FaultRuleError as error:
                    if len(rules) == 1:
                        raise
                    raise FaultRuleError(f"rule {offset}: {error}") from None
            self._state.db().executemany(
                "INSERT INTO faults (id, rule) VALUES (?, ?)",
                [(rule.id, json.dumps(rule.to_json())) for rule in parsed],
            )
            self._state.set(_FAULT_NEXT_ID, first + len(parsed))
            self._state.set(_FAULT_COUNT, self._state.get(_FAULT_COUNT) + len(parsed))
            self._changed()
            return parsed

    def list(self) -> builtins.list[dict[str, Any]]:
        with self._state.lock:
            return [rule.to_json() for rule in self._rules_now()]

    def clear(self) -> None:
        with self._state.lock:
            self._state.db().execute("DELETE FROM faults")
            self._state.set(_FAULT_COUNT, 0)
            self._changed()

    def reset(self) -> None:
        with self._state.lock:
            self._state.db().execute("DELETE FROM faults")
            self._state.set(_FAULT_COUNT, 0)
            self._state.set(_FAULT_NEXT_ID, 1)
            self._state.set(_FAULT_DRAWS, 0)
            self._changed()

    def _draw(self) -> float:
        """The next value of the one seeded sequence (hold the lock)."""
        draws = self._state.get(_FAULT_DRAWS)
        if self._drawn > draws:  # reset since: from the seed again
            self._random, self._drawn = random.Random(self.seed), 0
        while self._drawn < draws:  # the draws other workers made
            self._random.random()
            self._drawn += 1
        self._drawn += 1
        self._state.set(_FAULT_DRAWS, draws + 1)
        return self._random.random()

    def match(self, method: str, path: str) -> Fault | None:
        if self._state.get(_FAULT_COUNT) == 0:
            return None
        method = method.upper()
        generation = self._state.get(_FAULT_GENERATION)
        if generation != self._seen:
            with self._state.lock:
                generation = self._state.get(_FAULT_GENERATION)
                self._cached = self._rules_now()
                self._seen = generation  # only now: whoever sees it finds these rules
        if not any(rule.applies_to(method, path) for rule in self._cached):
            return None
        with self._state.lock:
            db = self._state.db()
            for rule in self._rules_now():
                if not rule.applies_to(method, path):
                    continue
                if rule.probability < 1 and self._draw() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        db.execute("DELETE FROM faults WHERE id = ?", (rule.id,))
                        self._state.set(_FAULT_COUNT, self._state.get(_FAULT_COUNT) - 1)
                        self._changed()
                    else:
                        db.execute(
                            "UPDATE faults SET rule = ? WHERE id = ?",
                            (json.dumps(rule.to_json()), rule.id),
                        )
                return Fault(
                    rule.id, rule.status, rule.body, rule.latency_ms, rule.fault, rule.headers
                )
        return None


_RING_SLOT = 2048
_RING_HEAD = struct.Struct("qI")  # id, length of the JSON (_IN_FILE: too long for a slot)
_IN_FILE = 0xFFFFFFFF
_RING_NEXT, _RING_FIRST, _RING_MADE = 0, 1, 2  # the next id, the first not cleared, made


class SharedRing:
    """Numbered JSON documents, the last `maxlen` kept, in a shared-memory ring of `maxlen`
    slots of 2 KiB made before the fork; a document too long for its slot (a traceback) is
    kept in the shared file instead (D204). `name` tells its long documents from another's."""

    def __init__(self, state: SharedState, name: str, maxlen: int) -> None:
        self._state = state
        self._name = name
        self.maxlen = maxlen
        self._slots = state.memory(f"{name}.ring", maxlen * _RING_SLOT)
        self._counters = state.memory(f"{name}.counters", 24)
        with state.lock:  # no database touched: none is opened before the fork
            if not self._get(_RING_MADE):  # else another worker's copy numbers already
                self._set(_RING_NEXT, 1)
                self._set(_RING_FIRST, 1)
                self._set(_RING_MADE, 1)

    def _get(self, counter: int) -> int:
        value: int = struct.unpack_from("q", self._counters, counter * 8)[0]
        return value

    def _set(self, counter: int, value: int) -> None:
        struct.pack_into("q", self._counters, counter * 8, value)

    def append(self, document: dict[str, Any]) -> int:
        """Keep `document`; its id."""
        data = json.dumps(document).encode()
        fits = _RING_HEAD.size + len(data) <= _RING_SLOT
        with self._state.lock:
            number = self._get(_RING_NEXT)
            at = (number - 1) % self.maxlen * _RING_SLOT
            _RING_HEAD.pack_into(self._slots, at, number, len(data) if fits else _IN_FILE)
            if fits:
                self._slots[at + _RING_HEAD.size : at + _RING_HEAD.size + len(data)] = data
            else:
                db = self._state.db()
                old = (self._name, number - self.maxlen)
                db.execute("DELETE FROM long WHERE ring = ? AND id <= ?", old)
                row = (self._name, number, data)
                db.execute("INSERT INTO long (ring, id, data) VALUES (?, ?, ?)", row)
            self._set(_RING_NEXT, number + 1)
        return number

    def documents(self, limit: int | None = None) -> builtins.list[tuple[int, Any]]:
        """(id, document) of the last `limit` kept (all by default), oldest first."""
        keep = self.maxlen if limit is None else min(limit, self.maxlen)
        if keep <= 0:
            return []
        found = []
        with self._state.lock:
            following = self._get(_RING_NEXT)
            for number in range(max(self._get(_RING_FIRST), following - keep, 1), following):
                at = (number - 1) % self.maxlen * _RING_SLOT
                kept, size = _RING_HEAD.unpack_from(self._slots, at)
                if size == _IN_FILE:
                    raw = self._state.db().execute(
                        "SELECT data FROM long WHERE ring = ? AND id = ?", (self._name, number)
                    ).fetchone()[0]
                else:
                    raw = self._slots[at + _RING_HEAD.size : at + _RING_HEAD.size + size]
                found.append((kept, json.loads(raw)))
        return found

    def clear(self) -> None:
        """Forget every document; ids keep counting."""
        with self._state.lock:
            self._set(_RING_FIRST, self._get(_RING_NEXT))
            self._state.db().execute("DELETE FROM long WHERE ring = ?", (self._name,))

    def reset(self) -> None:
        """Forget every document and number from 1 again."""
        with self._state.lock:
            self._set(_RING_NEXT, 1)
            self._set(_RING_FIRST, 1)
            self._state.db().execute("DELETE FROM long WHERE ring = ?", (self._name,))

    def __len__(self) -> int:
        with self._state.lock:
            following = self._get(_RING_NEXT)
            return following - max(self._get(_RING_FIRST), following - self.maxlen)


class SharedJournal(Journal):
    """A `Journal` in a `SharedRing`: ids from one counter, entries in the order recorded."""

    def __init__(self, state: SharedState, maxlen: int = 1000) -> None:
        super().__init__(maxlen)
        self._ring = state.ring("journal", maxlen)

    @property
    def maxlen(self) -> int:
        return self._ring.maxlen

    def _keep(self, fields: dict[str, Any]) -> JournalEntry:
        return JournalEntry(id=self._ring.append(fields), **fields)

    def entries(self, limit: int | None = None) -> builtins.list[JournalEntry]:
        return [JournalEntry(id=number, **fields) for number, fields in self._ring.documents(limit)]

    def clear(self) -> None:
        self._ring.clear()

    def reset(self) -> None:
        self._ring.reset()

    def __len__(self) -> int:
        return len(self._ring)


class SharedRateLimiter(RateLimiter):
    """A `RateLimiter` whose per-key logs and settings are in the shared file and page: each
    hit loads its key's log into the same pyrate-limiter bucket one process uses, decides as
    one process does, and stores the log back, under the one lock (D200)."""

    def __init__(self, state: SharedState, clock: Clock, limit: int, period_seconds: float) -> None:
        super().__init__(clock, limit, period_seconds)
        self._state = state
        self._seen = 0
        self._last_db_sweep = self._now_ms()
        with state.lock:
            # The first one built sets the window; a copy built later (a sandbox's in another
            # worker, D217; the PEP built in each worker, D207) must not clear counted hits.
            if state.get(_RATE_GENERATION) == 0:
                self._publish(limit, period_seconds)
            self._sync()

    def _publish(self, limit: int, period_seconds: float) -> None:
        self._state.set(_RATE_LIMIT, limit)
        self._state.set_float(_RATE_PERIOD, float(period_seconds))
        self._state.set(_RATE_GENERATION, self._state.get(_RATE_GENERATION) + 1)
        self._state.db().execute("DELETE FROM hits")

    def _sync(self) -> None:
        """The shared limit and period, when another worker changed them (hold the lock)."""
        generation = self._state.get(_RATE_GENERATION)
        if generation != self._seen:
            period = self._state.get_float(_RATE_PERIOD)
            with self._lock:
                self._rate = _checked(self._state.get(_RATE_LIMIT), period)
                self._period_seconds = period
                self._buckets.clear()
            self._seen = generation

    @property
    def limit(self) -> int:
        with self._state.lock:
            self._sync()
        return self._rate.limit

    @property
    def period_seconds(self) -> float:
        with self._state.lock:
            self._sync()
        return self._period_seconds

    @property
    def tracked_keys(self) -> int:
        with self._state.lock:
            row = self._state.db().execute("SELECT count(*) FROM hits").fetchone()
        return int(row[0])

    def configure(self, limit: int, period_seconds: float) -> None:
        _checked(limit, period_seconds)
        with self._state.lock:
            self._publish(limit, period_seconds)
            self._sync()

    def hit(self, key: str) -> RateDecision:
        with self._state.lock:
            self._sync()
            db = self._state.db()
            row = db.execute("SELECT stamps FROM hits WHERE key = ?", (key,)).fetchone()
            with self._lock:
                self._buckets.clear()
                if row is not None:
                    bucket = self._buckets[key] = InMemoryBucket([self._rate])
                    bucket.items = [RateItem(key, stamp) for stamp in json.loads(row[0])]
            decision = super().hit(key)
            with self._lock:
                kept = self._buckets.get(key)
                stamps = [] if kept is None else [item.timestamp for item in kept.items]
                self._buckets.clear()
            if stamps:
                db.execute(
                    "INSERT OR REPLACE INTO hits (key, newest, stamps) VALUES (?, ?, ?)",
                    (key, stamps[-1], json.dumps(stamps)),
                )
            elif row is not None:
                db.execute("DELETE FROM hits WHERE key = ?", (key,))
            now = self._now_ms()
            if not self._last_db_sweep <= now < self._last_db_sweep + self._rate.interval:
                # Keys idle for a whole period (or set back in time) are forgotten.
                self._last_db_sweep = now
                db.execute(
                    "DELETE FROM hits WHERE newest < ? OR newest > ?",
                    (now - self._rate.interval, now),
                )
        return decision



class SharedDraws:
    """A seeded sequence of `bits`-bit numbers drawn by every worker in turn: the k-th draw of
    any worker is the k-th value of `random.Random(seed)`, as in one process (D208). Two slots
    of the page from `slot`: the draws made, and an epoch `reset` moves."""

    def __init__(self, state: SharedState, slot: int, seed: int | str, bits: int) -> None:
        self._state, self._slot, self._seed, self._bits = state, slot, seed, bits
        self._random = random.Random(seed)
        self._drawn, self._epoch = 0, -1

    def next(self) -> int:
        state = self._state
        with state.lock:
            count, epoch = state.get(self._slot), state.get(self._slot + 1)
            if epoch != self._epoch or self._drawn > count:  # reset since: from the seed
                self._random, self._drawn, self._epoch = random.Random(self._seed), 0, epoch
            while self._drawn < count:  # the draws other workers made
                self._random.getrandbits(self._bits)
                self._drawn += 1
            self._drawn += 1
            state.set(self._slot, count + 1)
            return self._random.getrandbits(self._bits)

    def reset(self) -> None:
        with self._state.lock:
            self._state.set(self._slot, 0)
            self._state.set(self._slot + 1, self._state.get(self._slot + 1) + 1)
