"""The reactive engine: the Platform gateway's events applied to per-player aggregates, missions,
XP, levels, ranks and notifications, configured in YAML (engine_config.py reads it).

This module is the engine's database and thread: its tables and statements, claiming a batch,
reading its players, writing back what changed. What an event does to a player is the pure
domain in engine_domain.py (`Rules`), as the Sinatra mock's backend is apart from its routes.

Events are applied in batches, each in one transaction that also sets its events'
`processed_at`, so a restart resumes exactly where it stopped: nothing lost, nothing counted
twice. Amounts are exact decimals (stored as text), so events applied in any order give the
same sums.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from pepharness.mocks.core.clock import Clock, to_rfc3339
from pepharness.mocks.pep.engine_config import (
    AMOUNT_CONDITIONS,
    CATEGORY_OBJECTIVES,
    COUNT_CONDITIONS,
    DEFAULT_CONFIG,
    OBJECTIVE_MEASURES,
    SEGMENT_CONDITIONS,
    TRIGGER_FIELDS,
    ZERO,
    Activity,
    EngineConfig,
    Mission,
    NotificationRule,
    Objective,
    Rank,
    SegmentRule,
)
from pepharness.mocks.pep.engine_domain import (
    APPROVED,
    Aggregates,
    Batch,
    Event,
    MalformedEvent,
    MissionProgress,
    PlayerState,
    Publication,
    Publish,
    Rules,
    Standing,
    decimal_text,
    leader_json,
    notification_json,
    read_event,
    segments_of,
)
from pepharness.mocks.pep.events import platform_events
from pepharness.mocks.pep.store import create_tables, metadata, write_gate

__all__ = [
    "AMOUNT_CONDITIONS",
    "APPROVED",
    "BATCH_SIZE",
    "BUSY_BATCH",
    "BUSY_COALESCE_SECONDS",
    "CATEGORY_OBJECTIVES",
    "COALESCE_SECONDS",
    "COUNT_CONDITIONS",
    "DEFAULT_CONFIG",
    "DEFAULT_POLL_SECONDS",
    "ENGINE_EXTENSION",
    "ENGINE_TABLES",
    "OBJECTIVE_MEASURES",
    "SEGMENT_CONDITIONS",
    "TRIGGER_FIELDS",
    "ZERO",
    "Activity",
    "Aggregates",
    "EngineConfig",
    "MalformedEvent",
    "Mission",
    "MissionProgress",
    "NotificationRule",
    "Objective",
    "Publish",
    "Rank",
    "ReactiveEngine",
    "SegmentRule",
    "Standing",
    "engine_login_days",
    "engine_missions",
    "engine_notifications",
    "engine_players",
    "engine_ranks",
    "segments_of",
]

ENGINE_EXTENSION = "pepharness.pep.engine"
DEFAULT_POLL_SECONDS = 0.05
logger = logging.getLogger("pepharness.pep.engine")


def _no_publish(player_id: str, event: str, data: dict[str, Any]) -> None:
    """The default publisher: nobody listens."""


# -- tables -----------------------------------------------------------------------------------

engine_players = Table(
    "engine_players",
    metadata,
    Column("player_id", String(256), primary_key=True),
    Column("currency", String(8), nullable=True),
    # "occurred_at|event_key" of the event the currency came from: the latest one wins.
    Column("currency_key", String(400), nullable=True),
    Column("deposits", String(64), nullable=False),
    Column("deposit_count", Integer, nullable=False),
    Column("withdrawals", String(64), nullable=False),
    Column("bets", String(64), nullable=False),
    Column("wins", String(64), nullable=False),
    Column("last_login_at", String(40), nullable=True),
    Column("login_days", Integer, nullable=False),
    Column("registered_at", String(40), nullable=True),
    Column("tags", Text, nullable=False),
    # The segments as of the last event applied: entering one is seen against these.
    Column("segments", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
)

engine_login_days = Table(
    "engine_login_days",
    metadata,
    Column("player_id", String(256), primary_key=True),
    Column("day", String(10), primary_key=True),
)

engine_missions = Table(
    "engine_missions",
    metadata,
    Column("player_id", String(256), primary_key=True),
    Column("mission_id", String(128), primary_key=True),
    Column("progress", Text, nullable=False),
    Column("completed_at", String(40), nullable=True),
    Column("updated_at", String(40), nullable=False),
)

engine_ranks = Table(
    "engine_ranks",
    metadata,
    Column("player_id", String(256), primary_key=True),
    Column("xp_balance", Integer, nullable=False, index=True),
    Column("level", Integer, nullable=False),
    Column("rank", String(64), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

engine_notifications = Table(
    "engine_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("player_id", String(256), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

ENGINE_TABLES = (
    engine_players,
    engine_login_days,
    engine_missions,
    engine_ranks,
    engine_notifications,
)


# -- statements -------------------------------------------------------------------------------
# Built once and executed with parameters: building a SQLAlchemy statement costs more than
# SQLite's running it, and the engine shares its process (and GIL) with ingestion.

_PENDING = (
    select(platform_events)
    .where(platform_events.c.processed_at.is_(None))
    .order_by(platform_events.c.seq)
    .limit(bindparam("limit"))
)
# PostgreSQL, where several engines (PEP instances) may share the database: the batch is
# selected and locked in the claiming transaction, skipping the events another engine's batch
# holds (D191).
_PENDING_LOCKED = _PENDING.with_for_update(skip_locked=True)
# And a player's events of two concurrent batches are applied one batch after the other: a
# transaction-scoped advisory lock per player, taken in key order (no deadlock), also for a
# player that has no row yet to lock (D192).
_LOCK_PLAYERS = text(
    "SELECT count(pg_advisory_xact_lock(key))"
    " FROM (SELECT key FROM unnest(CAST(:keys AS bigint[])) AS key ORDER BY key) AS keys"
)
_PENDING_COUNT = select(func.count()).where(platform_events.c.processed_at.is_(None))
_CLAIM = (
    update(platform_events)
    .where(
        platform_events.c.seq.in_(bindparam("seqs", expanding=True)),
        platform_events.c.processed_at.is_(None),
    )
    .values(processed_at=bindparam("stamp"))
    .returning(platform_events.c.seq)
)
# Without UPDATE … RETURNING (SQLite before 3.35): one claim per event, counted.
_CLAIM_ONE = (
    update(platform_events)
    .where(
        platform_events.c.seq == bindparam("claimed_seq"),
        platform_events.c.processed_at.is_(None),
    )
    .values(processed_at=bindparam("stamp"))
)
_PLAYER = select(engine_players).where(engine_players.c.player_id == bindparam("player_id"))
_PLAYERS = (
    select(engine_players)
    .where(engine_players.c.player_id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)
_STANDING = select(engine_ranks).where(engine_ranks.c.player_id == bindparam("player_id"))
_STANDINGS = select(engine_ranks).where(
    engine_ranks.c.player_id.in_(bindparam("ids", expanding=True))
)
_PROGRESS = select(engine_missions).where(engine_missions.c.player_id == bindparam("player_id"))
_PROGRESSES = select(engine_missions).where(
    engine_missions.c.player_id.in_(bindparam("ids", expanding=True))
)
_LOGIN_DAYS = select(engine_login_days).where(
    engine_login_days.c.player_id.in_(bindparam("ids", expanding=True)),
    engine_login_days.c.day.in_(bindparam("days", expanding=True)),
)
_NOTIFICATIONS = (
    select(engine_notifications)
    .where(engine_notifications.c.player_id == bindparam("player_id"))
    .order_by(engine_notifications.c.id.desc())
)
_INSERT_PLAYERS = insert(engine_players)
_UPDATE_PLAYERS = update(engine_players).where(engine_players.c.player_id == bindparam("key"))
_INSERT_STANDINGS = insert(engine_ranks)
_UPDATE_STANDINGS = update(engine_ranks).where(engine_ranks.c.player_id == bindparam("key"))
_INSERT_PROGRESS = insert(engine_missions)
_UPDATE_PROGRESS = update(engine_missions).where(
    engine_missions.c.player_id == bindparam("key"),
    engine_missions.c.mission_id == bindparam("mission_key"),
)
_INSERT_LOGIN_DAYS = insert(engine_login_days)
_INSERT_NOTIFICATION = insert(engine_notifications)


def _write(connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """`statement` once per row, in one executemany; nothing when there is no row."""
    if rows:
        connection.execute(statement, list(rows))


# -- the engine -------------------------------------------------------------------------------


BATCH_SIZE = 500
COALESCE_SECONDS = 0.02
"""After a wake, how long the engine waits for more events before applying a batch: a few
hundredths of a second of latency for one commit per batch."""
BUSY_COALESCE_SECONDS = 0.1
BUSY_BATCH = 20
"""Under load (the last wake applied `BUSY_BATCH` events or more), the engine waits
`BUSY_COALESCE_SECONDS` instead (D229): its batch holds SQLite's one writer while it applies,
and fewer, larger batches leave the writer to ingestion more of the time."""


class ReactiveEngine:
    """Applies pending `platform_events` of `db` in `seq` order; `start()` runs it in a daemon
    thread that polls every `poll_seconds` and wakes at once on `wake()`.

    Money counts only APPROVED transactions: DEPOSIT adds to deposits (and their count),
    WITHDRAW to withdrawals; MANUAL_CREDIT / MANUAL_DEBIT stay in the log and count nothing.
    A round's BET adds realMoneyAmount + bonusMoneyAmount to bets, its WIN to wins (only
    APPROVED items too); a WIN of 0 is no "win" for missions. Tags upserts add to the set.
    """

    def __init__(
        self,
        db: Engine,
        *,
        clock: Clock,
        config: EngineConfig,
        publish: Publish = _no_publish,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        starting_xp: Callable[[str], int] | None = None,
    ) -> None:
        self.db = db
        self._gate = write_gate(db)  # D226
        self.clock = clock
        self.config = config
        self.publish = publish
        self.poll_seconds = poll_seconds
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting_xp = starting_xp
        create_tables(db, [platform_events, *ENGINE_TABLES])

    def starting_standing(self, player_id: str) -> Standing:
        """The player's standing before any event: its seeded XP (`starting_xp`; 0 without
        one), its level and rank through the configuration, the one rank model (D89, D90)."""
        xp = 0 if self._starting_xp is None else max(0, int(self._starting_xp(player_id)))
        return Rules(self.config).standing(xp)

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        """Apply pending events in a daemon thread until `stop()`."""
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="pepharness-pep-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        self._wake.set()
        # The app's finaliser may run in the engine's own thread (a garbage collection there):
        # that thread then ends by itself, at its next look at `_stopping`.
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Apply what is pending now rather than at the next poll (call it after a 202)."""
        self._wake.set()

    def _run(self) -> None:
        busy = False
        while not self._stopping.is_set():
            if not busy:
                self._wake.wait(self.poll_seconds)
            # A moment for the events arriving together to be applied together; a longer one
            # while they arrive fast (D229), so that ingestion has the writer in between.
            self._stopping.wait(BUSY_COALESCE_SECONDS if busy else COALESCE_SECONDS)
            self._wake.clear()
            try:
                applied = self.apply_pending()
                while applied == BATCH_SIZE and not self._stopping.is_set():  # a backlog
                    applied = self.apply_pending()
                busy = applied >= BUSY_BATCH
            except Exception:  # the thread lives on; the batch stays pending and is retried
                logger.exception("the reactive engine failed to apply events")
                busy = False
                self._stopping.wait(self.poll_seconds)

    def converged(self, timeout: float = 5.0) -> bool:
        """True once no event is pending (waiting up to `timeout` seconds), every applied
        event's publications made; applies them itself when the thread is not running."""
        deadline = time.monotonic() + timeout
        self.wake()
        while True:
            if not self.running:
                self.apply_pending()
            with self._lock:
                if self.pending() == 0:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def pending(self) -> int:
        with self.db.connect() as connection:
            return int(connection.execute(_PENDING_COUNT).scalar_one())

    def reset(self) -> None:
        """Forget every aggregate, mission, XP and notification (the event log is kept)."""
        with self._lock, self.db.begin() as connection:
            for table in ENGINE_TABLES:
                connection.execute(delete(table))

    # -- applying -------------------------------------------------------------------------

    def apply_pending(self, limit: int = BATCH_SIZE) -> int:
        """Apply up to `limit` pending events in `seq` order, all in one transaction with
        their `processed_at` (so a restart finds each either applied with its effects or
        pending, never half); publish their effects after the commit. Returns how many were
        applied. One commit per batch, not per event: ingestion and the engine share the
        database's single writer.

        The batch's events are claimed first (one another engine claimed already is left to
        it), their players read once, the events applied in memory one after the other, and
        every row they changed written once before the commit. On PostgreSQL, where other PEP
        instances' engines may share the database, the batch is selected `FOR UPDATE SKIP
        LOCKED` in that transaction and its players locked one by one in a fixed order (D191,
        D192); on SQLite its single writer orders the engines."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._lock:
            shared = self.db.dialect.name == "postgresql"
            if not shared:
                with self.db.connect() as connection:
                    rows = connection.execute(_PENDING, {"limit": limit}).all()
                if not rows:
                    return 0
            now = self.clock.now()
            stamp = to_rfc3339(now)
            publications: list[Publication] = []
            with self._gate, self.db.begin() as connection:
                if shared:
                    rows = connection.execute(_PENDING_LOCKED, {"limit": limit}).all()
                events = [_event(row) for row in self._claim(connection, rows, stamp)]
                if events:
                    if shared:
                        keys = sorted({_lock_key(event.player_id) for event in events})
                        connection.execute(_LOCK_PLAYERS, {"keys": keys})
                    batch = self._load(connection, events)
                    rules = Rules(self.config)
                    for event in events:
                        publications += rules.apply(batch, event, now, stamp)
                    self._save(connection, batch, stamp)
            for player_id, name, data in publications:
                try:
                    self.publish(player_id, name, data)
                except Exception:
                    logger.exception("publishing %s to %s failed", name, player_id)
            return len(events)

    def _claim(self, connection: Connection, rows: Sequence[Any], stamp: str) -> list[Any]:
        """The `rows` this engine claims (sets processed_at of) in this transaction: not those
        another engine on the same database applied first. The write lock is held from here
        to the commit."""
        if connection.dialect.update_returning:
            seqs = [row.seq for row in rows]
            claimed = set(
                connection.execute(_CLAIM, {"seqs": seqs, "stamp": stamp}).scalars().all()
            )
            return [row for row in rows if row.seq in claimed]
        claimed_rows = []
        for row in rows:
            result = connection.execute(_CLAIM_ONE, {"claimed_seq": row.seq, "stamp": stamp})
            if result.rowcount == 1:
                claimed_rows.append(row)
        return claimed_rows

    def _load(self, connection: Connection, events: Sequence[Event]) -> Batch:
        """The stored state of the players of `events`, and the login days they may repeat."""
        ids = sorted({event.player_id for event in events})
        # The players' rows first: on PostgreSQL, locked until the commit.
        players = {row.player_id: row for row in connection.execute(_PLAYERS, {"ids": ids})}
        standings = {
            row.player_id: Standing(row.xp_balance, row.level, row.rank)
            for row in connection.execute(_STANDINGS, {"ids": ids})
        }
        progress: dict[str, list[Any]] = {}
        for row in connection.execute(_PROGRESSES, {"ids": ids}):
            progress.setdefault(row.player_id, []).append(row)
        logins = {
            (event.player_id, event.occurred[:10])
            for event in events
            if event.error is None and event.kind == "login"
        }
        known: set[tuple[str, str]] = set()
        if logins:
            query = {"ids": sorted({p for p, _ in logins}), "days": sorted({d for _, d in logins})}
            known = {(row.player_id, row.day) for row in connection.execute(_LOGIN_DAYS, query)}
        batch = Batch({}, known)
        for player_id in ids:
            found = players.get(player_id)
            standing = standings.get(player_id)
            batch.players[player_id] = PlayerState(
                aggregates=Aggregates(player_id) if found is None else _aggregates(found),
                standing=standing or self.starting_standing(player_id),
                progress=self._progress_of(progress.get(player_id, ())),
                stored=found is not None,
                stored_standing=standing,
            )
        return batch

    def _save(self, connection: Connection, batch: Batch, stamp: str) -> None:
        """Write every row the batch's applied events changed."""
        settled = [player for player in batch.players.values() if player.settled]
        rows = [(player, _aggregates_row(player.aggregates, stamp)) for player in settled]
        _write(connection, _INSERT_PLAYERS, [row for player, row in rows if not player.stored])
        _write(
            connection,
            _UPDATE_PLAYERS,
            [_keyed(row, "player_id") for player, row in rows if player.stored],
        )
        standings = [(player, _standing_row(player, stamp)) for player in settled]
        _write(
            connection,
            _INSERT_STANDINGS,
            [row for player, row in standings if player.stored_standing is None],
        )
        _write(
            connection,
            _UPDATE_STANDINGS,
            [
                _keyed(row, "player_id")
                for player, row in standings
                if player.stored_standing is not None and player.stored_standing != player.standing
            ],
        )
        progress = [
            (item, _progress_row(player.aggregates.player_id, item, stamp))
            for player in settled
            for item in player.progress
            if item.changed
        ]
        _write(connection, _INSERT_PROGRESS, [row for item, row in progress if not item.stored])
        _write(
            connection,
            _UPDATE_PROGRESS,
            [_keyed(row, "player_id", "mission_id") for item, row in progress if item.stored],
        )
        _write(connection, _INSERT_LOGIN_DAYS, batch.new_login_days)
        for values, notification in batch.notifications:
            key = connection.execute(_INSERT_NOTIFICATION, values).inserted_primary_key
            notification["id"] = str(int(key[0]) if key else 0)

    def _progress_of(self, rows: Iterable[Any]) -> list[MissionProgress]:
        """The progress in every configured mission from a player's stored `rows` (zero where
        none is stored)."""
        stored = {row.mission_id: row for row in rows}
        result = []
        for mission in self.config.missions:
            row = stored.get(mission.id)
            values = [ZERO] * len(mission.objectives)
            if row is not None:
                saved = [Decimal(value) for value in json.loads(row.progress)]
                # A configuration changed since: keep what still lines up.
                values = (saved + values)[: len(values)]
            completed = None if row is None else row.completed_at
            result.append(MissionProgress(mission, values, completed, row is not None))
        return result

    # -- reading --------------------------------------------------------------------------

    def player_state(self, player_id: str) -> dict[str, Any] | None:
        """The player's aggregates, segments (at the service clock's now), XP balance, level
        and rank; None when no event of the player has been applied."""
        with self.db.connect() as connection:
            row = connection.execute(_PLAYER, {"player_id": player_id}).first()
            standing = self._standing(connection, player_id)
        if row is None:
            return None
        player = _aggregates(row)
        if standing is None:
            standing = self.starting_standing(player_id)
        return {
            **player.to_json(),
            "segments": list(segments_of(self.config, player, self.clock.now())),
            "xpBalance": standing.xp,
            "level": standing.level,
            "rank": standing.rank,
        }

    def _standing(self, connection: Connection, player_id: str) -> Standing | None:
        row = connection.execute(_STANDING, {"player_id": player_id}).first()
        return None if row is None else Standing(row.xp_balance, row.level, row.rank)

    def missions(self, player_id: str) -> list[dict[str, Any]]:
        """Every configured mission with the player's progress, in the configuration's order
        (every one at 0 for a player the engine has no state for) (D67)."""
        with self.db.connect() as connection:
            rows = connection.execute(_PROGRESS, {"player_id": player_id}).all()
        return [item.to_json() for item in self._progress_of(rows)]

    def leaderboard(self, player_id: str, limit: int = 25) -> dict[str, Any]:
        """`{"items": the top `limit` by XP (ties by player id), "me": the player's row}`
        (D68); `me.position` is None when the engine has no state for the player."""
        order = (engine_ranks.c.xp_balance.desc(), engine_ranks.c.player_id)
        with self.db.connect() as connection:
            rows = connection.execute(select(engine_ranks).order_by(*order).limit(limit)).all()
            mine = self._standing(connection, player_id)
            position = None
            if mine is not None:
                ahead = select(func.count()).where(
                    or_(
                        engine_ranks.c.xp_balance > mine.xp,
                        and_(
                            engine_ranks.c.xp_balance == mine.xp,
                            engine_ranks.c.player_id < player_id,
                        ),
                    )
                )
                position = int(connection.execute(ahead).scalar_one()) + 1
        items = [
            leader_json(index, row.player_id, Standing(row.xp_balance, row.level, row.rank))
            for index, row in enumerate(rows, start=1)
        ]
        if mine is None:
            mine = self.starting_standing(player_id)
        return {"items": items, "me": leader_json(position, player_id, mine)}

    def notifications(self, player_id: str) -> list[dict[str, Any]]:
        """The player's notifications, newest first (D69)."""
        with self.db.connect() as connection:
            rows = connection.execute(_NOTIFICATIONS, {"player_id": player_id})
            return [notification_json(row.id, row._asdict()) for row in rows]


def _lock_key(player_id: str) -> int:
    """The player's advisory lock: a signed 64-bit number from its id (a collision only makes
    two players wait for each other)."""
    digest = hashlib.blake2b(player_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _event(row: Any) -> Event:
    """A claimed platform_events row, read."""
    return read_event(row.seq, row.player_id, row.kind, row.event_key, row.body, row.occurred_at)


def _keyed(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    """`row` as the parameters of an UPDATE of its other columns where its `keys` match
    (`player_id` as `key`, `mission_id` as `mission_key`)."""
    names = {"player_id": "key", "mission_id": "mission_key"}
    return {names[name] if name in keys else name: value for name, value in row.items()}


def _standing_row(player: PlayerState, stamp: str) -> dict[str, Any]:
    standing = player.standing
    return {
        "player_id": player.aggregates.player_id,
        "xp_balance": standing.xp,
        "level": standing.level,
        "rank": standing.rank,
        "updated_at": stamp,
    }


def _progress_row(player_id: str, progress: MissionProgress, stamp: str) -> dict[str, Any]:
    return {
        "player_id": player_id,
        "mission_id": progress.mission.id,
        "progress": json.dumps([decimal_text(value) for value in progress.values]),
        "completed_at": progress.completed_at,
        "updated_at": stamp,
    }


def _aggregates(row: Any) -> Aggregates:
    """A player's engine_players row as its aggregates."""
    return Aggregates(
        player_id=row.player_id,
        currency=row.currency,
        currency_key=row.currency_key,
        deposits=Decimal(row.deposits),
        deposit_count=row.deposit_count,
        withdrawals=Decimal(row.withdrawals),
        bets=Decimal(row.bets),
        wins=Decimal(row.wins),
        last_login_at=row.last_login_at,
        login_days=row.login_days,
        registered_at=row.registered_at,
        tags=tuple(json.loads(row.tags)),
        segments=tuple(json.loads(row.segments)),
    )


def _aggregates_row(aggregates: Aggregates, updated_at: str) -> dict[str, Any]:
    """`aggregates` as its engine_players row."""
    return {
        "player_id": aggregates.player_id,
        "currency": aggregates.currency,
        "currency_key": aggregates.currency_key,
        "deposits": decimal_text(aggregates.deposits),
        "deposit_count": aggregates.deposit_count,
        "withdrawals": decimal_text(aggregates.withdrawals),
        "bets": decimal_text(aggregates.bets),
        "wins": decimal_text(aggregates.wins),
        "last_login_at": aggregates.last_login_at,
        "login_days": aggregates.login_days,
        "registered_at": aggregates.registered_at,
        "tags": json.dumps(list(aggregates.tags)),
        "segments": json.dumps(list(aggregates.segments)),
        "updated_at": updated_at,
    }
