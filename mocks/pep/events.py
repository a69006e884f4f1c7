"""The Platform gateway's durable event log: every accepted event is a row before its 202.

One row per event (per transaction of a game round), keyed by its idempotency key: a repeat
is found, not stored again. `seq` is the arrival order the reactive engine applies events in;
`processed_at` stays NULL until the engine has applied the event, in the same transaction as
its effects, so a restart resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pepharness.mocks.core.clock import to_rfc3339
from pepharness.mocks.pep.store import metadata, write_gate

KINDS = ("money", "round", "registration", "login", "tags")

platform_events = Table(
    "platform_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(300), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("player_id", String(256), nullable=False, index=True),
    Column("occurred_at", String(40), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Column("processed_at", String(40), nullable=True, index=True),
)


@dataclass(frozen=True)
class NewEvent:
    """An event as the gateway accepted it, before it is stored."""

    key: str
    kind: str
    player_id: str
    occurred_at: datetime
    body: dict[str, Any]


@dataclass(frozen=True)
class Stored:
    """What storing an event came to: its sequence number, and whether it was there already."""

    seq: int
    duplicate: bool


@dataclass(frozen=True)
class EventRow:
    seq: int
    key: str
    kind: str
    player_id: str
    occurred_at: str
    received_at: str
    client_id: str
    body: dict[str, Any]
    processed_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "eventId": str(self.seq),
            "kind": self.kind,
            "playerId": self.player_id,
            "date": self.occurred_at,
            "receivedAt": self.received_at,
            "processed": self.processed_at is not None,
            "event": self.body,
        }


def dialect_insert(engine: Engine) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite 3.24+, PostgreSQL)."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def _row(row: Any) -> EventRow:
    return EventRow(
        seq=row.seq,
        key=row.event_key,
        kind=row.kind,
        player_id=row.player_id,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        client_id=row.client_id,
        body=json.loads(row.body),
        processed_at=row.processed_at,
    )


class _DriverStatement:
    """A statement compiled once for `engine`'s dialect, run on a driver cursor: what
    SQLAlchemy does per execution (cache lookup, execution context, result object) costs
    more than SQLite's insert itself (D228)."""

    def __init__(self, statement: Any, engine: Engine, columns: list[str] | None = None) -> None:
        compiled = statement.compile(dialect=engine.dialect, column_keys=columns)
        self.sql = str(compiled)
        self.order = list(compiled.positiontup or ()) if compiled.positional else None

    def run(self, cursor: Any, values: dict[str, Any]) -> Any:
        """The first row the statement returns, or None."""
        if self.order is None:
            cursor.execute(self.sql, values)
        else:
            cursor.execute(self.sql, tuple(values[name] for name in self.order))
        return cursor.fetchone()


@dataclass
class _Waiting:
    """One `append` call's events, waiting for a commit (its own or a leader's)."""

    events: Sequence[NewEvent]
    client_id: str
    received: str
    results: list[Stored] | None = None
    error: BaseException | None = field(default=None)


class EventLog:
    """The `platform_events` table of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Built and compiled once: an ingestion runs them on the driver's cursor (D228).
        insert_new = (
            dialect_insert(engine)(platform_events)
            .on_conflict_do_nothing(index_elements=[platform_events.c.event_key])
            .returning(platform_events.c.seq)
        )
        find = select(platform_events.c.seq).where(platform_events.c.event_key == bindparam("key"))
        columns = ["event_key", "kind", "player_id", "occurred_at", "received_at", "client_id",
                   "body"]
        self._insert_sql = _DriverStatement(insert_new, engine, columns)
        self._find_sql = _DriverStatement(find, engine)
        self._gate = write_gate(engine)
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()
        self._leader = threading.Lock()

    def append(
        self, events: Sequence[NewEvent], *, client_id: str, received_at: datetime
    ) -> list[Stored]:
        """Store every event not stored yet, committed before this returns; a repeated key is
        reported as a duplicate with the sequence number it had.

        Group commit (D227): the call queues its events; the first caller to hold the
        writers' gate stores every call queued by then in one transaction, and each of those
        calls returns once that transaction has committed (a call that finds its events
        committed by another returns at once). One `INSERT … ON CONFLICT DO NOTHING RETURNING
        seq` per event: a key stored already (before, by an earlier call of the same group,
        or by another process) returns no row and is then looked up. When a group's
        transaction fails, each of its calls is stored again in a transaction of its own, so
        only the call whose events fail sees the error."""
        mine = _Waiting(events, client_id, to_rfc3339(received_at))
        with self._waiting_lock:
            self._waiting.append(mine)
        with self._leader, self._gate:
            if mine.results is None and mine.error is None:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._commit(group)
        if mine.error is not None:
            raise mine.error
        assert mine.results is not None
        return mine.results

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            self._store(group)
        except Exception as error:
            if len(group) == 1:
                group[0].error = error
                return
            for waiting in group:  # one at a time: only a failing call fails
                try:
                    self._store([waiting])
                except Exception as own:
                    waiting.error = own
        except BaseException as error:  # the thread is ending: so is every call of the group
            for waiting in group:
                waiting.error = error
            raise

    def _store(self, group: list[_Waiting]) -> None:
        found: list[list[Stored]] = []
        insert, find = self._insert_sql, self._find_sql
        with self.engine.begin() as connection:
            # The transaction's own driver connection: SQLAlchemy commits what runs on it.
            cursor = connection.connection.cursor()
            for waiting in group:
                results: list[Stored] = []
                for event in waiting.events:
                    values = {
                        "event_key": event.key,
                        "kind": event.kind,
                        "player_id": event.player_id,
                        "occurred_at": to_rfc3339(event.occurred_at),
                        "received_at": waiting.received,
                        "client_id": waiting.client_id,
                        "body": json.dumps(event.body, separators=(",", ":")),
                    }
                    row = insert.run(cursor, values)
                    if row is not None:
                        results.append(Stored(int(row[0]), duplicate=False))
                        continue
                    there = find.run(cursor, {"key": event.key})
                    assert there is not None, event.key  # kept by the conflict, in this snapshot
                    results.append(Stored(int(there[0]), duplicate=True))
                found.append(results)
            cursor.close()
        # Committed: only now does any call of the group return.
        for waiting, results in zip(group, found, strict=True):
            waiting.results = results

    def page(
        self, *, after_seq: int, limit: int, received_after: str | None = None
    ) -> list[EventRow]:
        """Events with `seq` > `after_seq` (received after `received_after`), by `seq`."""
        query = select(platform_events).where(platform_events.c.seq > after_seq)
        if received_after is not None:
            query = query.where(platform_events.c.received_at > received_after)
        query = query.order_by(platform_events.c.seq).limit(limit)
        with self.engine.connect() as connection:
            return [_row(row) for row in connection.execute(query)]

    def count(self, *, pending_only: bool = False) -> int:
        query = select(func.count()).select_from(platform_events)
        if pending_only:
            query = query.where(platform_events.c.processed_at.is_(None))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
