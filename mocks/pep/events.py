"""The Platform gateway's durable event log: every accepted event is a row before its 202.

One row per event (per transaction of a game round), keyed by its idempotency key: a repeat
is found, not stored again. `seq` is the arrival order the reactive engine applies events in;
`processed_at` stays NULL until the engine has applied the event, in the same transaction as
its effects, so a restart resumes exactly where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

from pepharness.mocks.core.clock import to_rfc3339
from pepharness.mocks.pep.store import metadata

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


class EventLog:
    """The `platform_events` table of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Built once: an ingestion is one statement per event, and building SQLAlchemy
        # statements costs more than SQLite's insert.
        self._insert_new = (
            dialect_insert(engine)(platform_events)
            .on_conflict_do_nothing(index_elements=[platform_events.c.event_key])
            .returning(platform_events.c.seq)
        )
        self._find = select(platform_events.c.seq).where(
            platform_events.c.event_key == bindparam("key")
        )

    def append(
        self, events: Sequence[NewEvent], *, client_id: str, received_at: datetime
    ) -> list[Stored]:
        """Store every event not stored yet, in one transaction committed before this returns;
        a repeated key is reported as a duplicate with the sequence number it had.

        One `INSERT … ON CONFLICT DO NOTHING RETURNING seq` per event: a key stored already
        (by this request or a concurrent one) returns no row, and is then looked up."""
        results: list[Stored] = []
        received = to_rfc3339(received_at)
        statement = self._insert_new
        with self.engine.begin() as connection:
            for event in events:
                values = {
                    "event_key": event.key,
                    "kind": event.kind,
                    "player_id": event.player_id,
                    "occurred_at": to_rfc3339(event.occurred_at),
                    "received_at": received,
                    "client_id": client_id,
                    "body": json.dumps(event.body, separators=(",", ":")),
                }
                seq = connection.execute(statement, values).scalar()
                if seq is not None:
                    results.append(Stored(int(seq), duplicate=False))
                    continue
                found = connection.execute(self._find, {"key": event.key}).scalar_one()
                results.append(Stored(int(found), duplicate=True))
        return results

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
