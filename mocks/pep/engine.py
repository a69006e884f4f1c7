"""The reactive engine: the Platform gateway's events applied to per-player aggregates, missions,
XP, levels, ranks and notifications, configured in YAML (engine.yaml ships the default).

Each event is applied in one transaction that also sets its `processed_at`, so a restart
resumes exactly where it stopped: nothing lost, nothing counted twice. Amounts are exact
decimals (stored as text), so events applied in any order give the same sums.
"""

from __future__ import annotations

import bisect
import json
import logging
import string
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

import yaml
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from pepharness.mocks.core.clock import Clock, parse_rfc3339, to_rfc3339
from pepharness.mocks.pep.events import platform_events
from pepharness.mocks.pep.store import metadata

ENGINE_EXTENSION = "pepharness.pep.engine"
DEFAULT_CONFIG = Path(__file__).with_name("engine.yaml")
DEFAULT_POLL_SECONDS = 0.05
APPROVED = "APPROVED"
ZERO = Decimal(0)

OBJECTIVE_MEASURES: Mapping[str, tuple[str, ...]] = {
    "deposit": ("sum", "count", "max"),
    "withdrawal": ("sum", "count", "max"),
    "wager": ("sum", "count", "max"),
    "win": ("sum", "count", "max"),
    "login": ("days", "count"),
}
CATEGORY_OBJECTIVES = ("wager", "win")
AMOUNT_CONDITIONS = ("depositsAtLeast", "betsAtLeast", "ggrAtLeast")
COUNT_CONDITIONS = ("depositCountAtLeast", "noLoginForDays", "registeredWithinDays")
SEGMENT_CONDITIONS = (*AMOUNT_CONDITIONS, *COUNT_CONDITIONS, "hasTag")
TRIGGER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "missionCompleted": ("missionId", "missionName", "xp"),
    "levelUp": ("level",),
    "rankUp": ("rank", "level"),
    "segmentEntered": ("segment",),
}

Publish = Callable[[str, str, dict[str, Any]], None]
logger = logging.getLogger("pepharness.pep.engine")


def _no_publish(player_id: str, event: str, data: dict[str, Any]) -> None:
    """The default publisher: nobody listens."""


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRule:
    """A segment: its name and the one condition a player meets to be in it."""

    name: str
    condition: str
    value: Decimal | int | str


@dataclass(frozen=True)
class Objective:
    """What a mission counts, up to `target`: events of `type` (deposit, withdrawal, wager,
    win, login) as `measure`: EUR added up (`sum`), events counted (`count`), the largest
    single amount (`max`) or distinct login days (`days`)."""

    type: str
    measure: str
    target: Decimal
    game_category: str | None = None

    def matches(self, activity: Activity) -> bool:
        if activity.kind != self.type:
            return False
        wanted = self.game_category
        return wanted is None or (activity.category or "").casefold() == wanted.casefold()


@dataclass(frozen=True)
class Mission:
    id: str
    name: str
    xp: int
    objectives: tuple[Objective, ...]


@dataclass(frozen=True)
class Rank:
    name: str
    from_level: int


@dataclass(frozen=True)
class NotificationRule:
    """A notification created when `trigger` fires (for `segment` / `mission` when given)."""

    trigger: str
    title: str
    message: str
    segment: str | None = None
    mission: str | None = None


class _Reader:
    """Reads one configuration document, naming the place of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ValueError(f"engine config {self.source}: {where}: {problem}")

    def mapping(
        self, value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping")
        unknown = sorted(str(key) for key in set(value) - set(required) - set(optional))
        if unknown:
            self.fail(where, f"unknown key(s): {', '.join(unknown)}")
        missing = [key for key in required if key not in value]
        if missing:
            self.fail(where, f"missing key(s): {', '.join(missing)}")
        return value

    def items(self, value: Any, where: str, *, empty: bool = False) -> list[Any]:
        if not isinstance(value, list) or (not value and not empty):
            self.fail(where, "must be a list" if empty else "must be a non-empty list")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, "must be a non-empty string")
        return value

    def number(self, value: Any, where: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, "must be a number")
        number = Decimal(str(value))
        if not number.is_finite():
            self.fail(where, "must be a finite number")
        return number

    def integer(self, value: Any, where: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(where, f"must be an integer >= {minimum}")
        return value

    def template(self, value: Any, where: str, fields: Sequence[str]) -> str:
        text = self.text(value, where)
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            self.fail(where, f"is not a valid template ({error})")
        unknown = sorted({name for name in names if name not in fields})
        if unknown:
            allowed = ", ".join(f"{{{name}}}" for name in fields)
            self.fail(where, f"unknown placeholder(s) {', '.join(unknown)}; allowed: {allowed}")
        return text


@dataclass(frozen=True)
class EngineConfig:
    """Segments, missions, levels (XP thresholds), ranks (by level) and notification rules."""

    segments: tuple[SegmentRule, ...]
    missions: tuple[Mission, ...]
    levels: tuple[int, ...]
    ranks: tuple[Rank, ...]
    notifications: tuple[NotificationRule, ...] = ()

    @classmethod
    def load(cls, path: str | Path | None = None) -> EngineConfig:
        """The configuration in the YAML file at `path` (None: the shipped engine.yaml);
        ValueError says what is wrong and where."""
        source = Path(DEFAULT_CONFIG if path is None else path)
        try:
            data = yaml.safe_load(source.read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"engine config {source}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ValueError(f"engine config {source}: not YAML: {error}") from None
        return cls.from_mapping(data, source=str(source))

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "<mapping>") -> EngineConfig:
        """The configuration of an already parsed document; ValueError when it is invalid."""
        reader = _Reader(source)
        top = reader.mapping(
            data, "top level", ("segments", "missions", "levels", "ranks"), ("notifications",)
        )
        segments = _segments(reader, top["segments"])
        missions = _missions(reader, top["missions"])
        levels = _levels(reader, top["levels"])
        ranks = _ranks(reader, top["ranks"], len(levels))
        notifications = _notifications(
            reader,
            top.get("notifications", []),
            {segment.name for segment in segments},
            {mission.id for mission in missions},
        )
        return cls(segments, missions, levels, ranks, notifications)

    def level_for(self, xp: int) -> int:
        """The level `xp` reaches: level n from the n-th threshold on."""
        return max(1, bisect.bisect_right(self.levels, xp))

    def rank_for(self, level: int) -> str:
        return [rank.name for rank in self.ranks if rank.from_level <= level][-1]


def _segments(reader: _Reader, value: Any) -> tuple[SegmentRule, ...]:
    if not isinstance(value, dict):
        reader.fail("segments", "must be a mapping of segment name to condition")
    rules = []
    for name, rule in value.items():
        where = f"segments.{name}"
        reader.text(name, where)
        condition = reader.mapping(rule, where, (), SEGMENT_CONDITIONS)
        if len(condition) != 1:
            reader.fail(where, f"needs exactly one condition of {', '.join(SEGMENT_CONDITIONS)}")
        ((kind, raw),) = condition.items()
        limit: Decimal | int | str
        if kind in AMOUNT_CONDITIONS:
            limit = reader.number(raw, f"{where}.{kind}")
        elif kind in COUNT_CONDITIONS:
            limit = reader.integer(raw, f"{where}.{kind}", 0 if kind.startswith("deposit") else 1)
        else:
            limit = reader.text(raw, f"{where}.{kind}")
        rules.append(SegmentRule(name, kind, limit))
    return tuple(rules)


def _missions(reader: _Reader, value: Any) -> tuple[Mission, ...]:
    missions: list[Mission] = []
    for index, item in enumerate(reader.items(value, "missions", empty=True)):
        where = f"missions[{index}]"
        raw = reader.mapping(item, where, ("id", "name", "xp", "objectives"))
        mission_id = reader.text(raw["id"], f"{where}.id")
        if any(mission.id == mission_id for mission in missions):
            reader.fail(f"{where}.id", f"{mission_id!r} is used by another mission")
        objectives = []
        for number, entry in enumerate(reader.items(raw["objectives"], f"{where}.objectives")):
            place = f"{where}.objectives[{number}]"
            spec = reader.mapping(
                entry, place, ("type", "measure", "target"), ("gameCategoryName",)
            )
            kind, measure = spec["type"], spec["measure"]
            if kind not in OBJECTIVE_MEASURES:
                reader.fail(f"{place}.type", f"must be one of {', '.join(OBJECTIVE_MEASURES)}")
            measures = OBJECTIVE_MEASURES[kind]
            if measure not in measures:
                reader.fail(f"{place}.measure", f"for {kind} must be one of {', '.join(measures)}")
            target = reader.number(spec["target"], f"{place}.target")
            if target <= 0:
                reader.fail(f"{place}.target", "must be above 0")
            if measure in ("count", "days") and target != target.to_integral_value():
                reader.fail(f"{place}.target", "must be a whole number for a count")
            category = spec.get("gameCategoryName")
            if category is not None:
                if kind not in CATEGORY_OBJECTIVES:
                    reader.fail(f"{place}.gameCategoryName", "applies to wager and win only")
                category = reader.text(category, f"{place}.gameCategoryName")
            objectives.append(Objective(kind, measure, target, category))
        missions.append(
            Mission(
                mission_id,
                reader.text(raw["name"], f"{where}.name"),
                reader.integer(raw["xp"], f"{where}.xp", 0),
                tuple(objectives),
            )
        )
    return tuple(missions)


def _levels(reader: _Reader, value: Any) -> tuple[int, ...]:
    levels = [
        reader.integer(item, f"levels[{index}]", 0)
        for index, item in enumerate(reader.items(value, "levels"))
    ]
    if levels[0] != 0:
        reader.fail("levels[0]", "level 1 starts at 0 XP")
    for index in range(1, len(levels)):
        if levels[index] <= levels[index - 1]:
            reader.fail(f"levels[{index}]", "XP thresholds must increase strictly")
    return tuple(levels)


def _ranks(reader: _Reader, value: Any, level_count: int) -> tuple[Rank, ...]:
    ranks: list[Rank] = []
    for index, item in enumerate(reader.items(value, "ranks")):
        where = f"ranks[{index}]"
        raw = reader.mapping(item, where, ("name", "fromLevel"))
        rank = Rank(
            reader.text(raw["name"], f"{where}.name"),
            reader.integer(raw["fromLevel"], f"{where}.fromLevel", 1),
        )
        if not ranks and rank.from_level != 1:
            reader.fail(f"{where}.fromLevel", "the first rank starts at level 1")
        if ranks and rank.from_level <= ranks[-1].from_level:
            reader.fail(f"{where}.fromLevel", "ranks must start at increasing levels")
        if rank.from_level > level_count:
            reader.fail(f"{where}.fromLevel", f"there are only {level_count} levels")
        if any(other.name == rank.name for other in ranks):
            reader.fail(f"{where}.name", f"{rank.name!r} is used by another rank")
        ranks.append(rank)
    return tuple(ranks)


def _notifications(
    reader: _Reader, value: Any, segments: set[str], missions: set[str]
) -> tuple[NotificationRule, ...]:
    rules = []
    for index, item in enumerate(reader.items(value, "notifications", empty=True)):
        where = f"notifications[{index}]"
        raw = reader.mapping(item, where, ("trigger", "title", "message"), ("segment", "mission"))
        trigger = raw["trigger"]
        if trigger not in TRIGGER_FIELDS:
            reader.fail(f"{where}.trigger", f"must be one of {', '.join(TRIGGER_FIELDS)}")
        segment, mission = raw.get("segment"), raw.get("mission")
        if (segment is not None) != (trigger == "segmentEntered"):
            reader.fail(f"{where}.segment", "is required by segmentEntered and only allowed there")
        if segment is not None and segment not in segments:
            reader.fail(f"{where}.segment", f"{segment!r} is not a configured segment")
        if mission is not None and (trigger != "missionCompleted" or mission not in missions):
            reader.fail(f"{where}.mission", "must name a configured mission, on missionCompleted")
        fields = TRIGGER_FIELDS[trigger]
        rules.append(
            NotificationRule(
                trigger,
                reader.template(raw["title"], f"{where}.title", fields),
                reader.template(raw["message"], f"{where}.message", fields),
                segment,
                mission,
            )
        )
    return tuple(rules)


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


# -- state ------------------------------------------------------------------------------------


def _number(value: Decimal) -> int | float:
    """A decimal as a JSON number: whole values as integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def _text(value: Decimal) -> str:
    return format(value, "f")


@dataclass
class Aggregates:
    """One player's sums (EUR) and facts, as applied so far."""

    player_id: str
    currency: str | None = None
    currency_key: str | None = None
    deposits: Decimal = ZERO
    deposit_count: int = 0
    withdrawals: Decimal = ZERO
    bets: Decimal = ZERO
    wins: Decimal = ZERO
    last_login_at: str | None = None
    login_days: int = 0
    registered_at: str | None = None
    tags: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Any) -> Aggregates:
        return cls(
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

    def row(self, updated_at: str) -> dict[str, Any]:
        return {
            "player_id": self.player_id,
            "currency": self.currency,
            "currency_key": self.currency_key,
            "deposits": _text(self.deposits),
            "deposit_count": self.deposit_count,
            "withdrawals": _text(self.withdrawals),
            "bets": _text(self.bets),
            "wins": _text(self.wins),
            "last_login_at": self.last_login_at,
            "login_days": self.login_days,
            "registered_at": self.registered_at,
            "tags": json.dumps(list(self.tags)),
            "segments": json.dumps(list(self.segments)),
            "updated_at": updated_at,
        }

    @property
    def ggr(self) -> Decimal:
        return self.bets - self.wins

    def to_json(self) -> dict[str, Any]:
        return {
            "playerId": self.player_id,
            "currency": self.currency,
            "deposits": _number(self.deposits),
            "depositCount": self.deposit_count,
            "withdrawals": _number(self.withdrawals),
            "bets": _number(self.bets),
            "wins": _number(self.wins),
            "ggr": _number(self.ggr),
            "lastLoginAt": self.last_login_at,
            "loginDays": self.login_days,
            "registeredAt": self.registered_at,
            "tags": list(self.tags),
        }


def segments_of(config: EngineConfig, player: Aggregates, now: datetime) -> tuple[str, ...]:
    """The segments `player` is in at `now`, in the configuration's order."""
    return tuple(rule.name for rule in config.segments if _meets(rule, player, now))


def _meets(rule: SegmentRule, player: Aggregates, now: datetime) -> bool:
    value = rule.value
    if rule.condition == "depositsAtLeast":
        return player.deposits >= Decimal(value)
    if rule.condition == "betsAtLeast":
        return player.bets >= Decimal(value)
    if rule.condition == "ggrAtLeast":
        return player.ggr >= Decimal(value)
    if rule.condition == "depositCountAtLeast":
        return player.deposit_count >= int(value)
    if rule.condition == "hasTag":
        return value in player.tags
    if rule.condition == "noLoginForDays":
        since = player.last_login_at or player.registered_at
        return since is not None and now - parse_rfc3339(since) >= timedelta(days=int(value))
    registered = player.registered_at  # registeredWithinDays
    return registered is not None and now - parse_rfc3339(registered) < timedelta(days=int(value))


@dataclass(frozen=True)
class Standing:
    """A player's XP balance, level and rank."""

    xp: int
    level: int
    rank: str


@dataclass(frozen=True)
class Activity:
    """What an event means to missions: a deposit, withdrawal, wager, win or login."""

    kind: str
    amount: Decimal = ZERO
    category: str | None = None


@dataclass
class MissionProgress:
    """One player's progress in one mission: a value per objective."""

    mission: Mission
    values: list[Decimal]
    completed_at: str | None = None
    stored: bool = False

    def advance(self, activities: Sequence[Activity], login_days: int) -> bool:
        """Count `activities` in; True when a value changed."""
        changed = False
        for activity in activities:
            for index, objective in enumerate(self.mission.objectives):
                if not objective.matches(activity):
                    continue
                value = self.values[index]
                if objective.measure == "sum":
                    value += activity.amount
                elif objective.measure == "count":
                    value += 1
                elif objective.measure == "max":
                    value = max(value, activity.amount)
                else:  # days
                    value = Decimal(login_days)
                changed = changed or value != self.values[index]
                self.values[index] = value
        return changed

    def reached(self) -> bool:
        return all(
            value >= objective.target
            for objective, value in zip(self.mission.objectives, self.values, strict=True)
        )

    def to_json(self) -> dict[str, Any]:
        """The mission as the Frontend reads it (D67)."""
        done = self.completed_at is not None
        objectives = []
        for objective, value in zip(self.mission.objectives, self.values, strict=True):
            item: dict[str, Any] = {
                "type": objective.type,
                "measure": objective.measure,
                "target": _number(objective.target),
                "progress": _number(value),
                "completed": value >= objective.target,
            }
            if objective.game_category is not None:
                item["gameCategoryName"] = objective.game_category
            objectives.append(item)
        return {
            "_id": self.mission.id,
            "name": self.mission.name,
            "objectives": objectives,
            "status": "COMPLETED" if done else "IN_PROGRESS",
            # XP is awarded on completion: there is nothing left to claim.
            "rewardClaimStatus": "CLAIMED" if done else "NOT_AVAILABLE",
            # One bundle of every configured mission, never ending.
            "missionBundleState": "ACTIVE",
            "reward": {"xp": self.mission.xp},
            "completedAt": self.completed_at,
        }


class MalformedEvent(ValueError):
    """An event body the engine cannot read: marked processed without effect, and logged."""


@dataclass
class _Effects:
    """What applying one event changed, to publish once it is committed."""

    publications: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, player_id: str, event: str, data: dict[str, Any]) -> None:
        self.publications.append((player_id, event, data))


def _amount(body: Mapping[str, Any], *names: str) -> Decimal:
    """The EUR value of the sum of `names`, times the event's exchangeRate."""
    total = ZERO
    for name in (*names, "exchangeRate"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise MalformedEvent(f"{name} is not a number")
        if not Decimal(value).is_finite():
            raise MalformedEvent(f"{name} is not finite")
    for name in names:
        total += Decimal(body[name])
    return total * Decimal(body["exchangeRate"])


# -- the engine -------------------------------------------------------------------------------


BATCH_SIZE = 500
COALESCE_SECONDS = 0.02
"""After a wake, how long the engine waits for more events before applying a batch: a few
hundredths of a second of latency for one commit per batch."""


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
    ) -> None:
        self.db = db
        self.clock = clock
        self.config = config
        self.publish = publish
        self.poll_seconds = poll_seconds
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        metadata.create_all(db, tables=[platform_events, *ENGINE_TABLES])

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
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Apply what is pending now rather than at the next poll (call it after a 202)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.poll_seconds)
            # A moment for the events arriving together to be applied together.
            self._stopping.wait(COALESCE_SECONDS)
            self._wake.clear()
            try:
                while not self._stopping.is_set() and self.apply_pending() > 0:
                    pass
            except Exception:  # the thread lives on; the event stays pending and is retried
                logger.exception("the reactive engine failed to apply events")
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
        query = select(func.count()).where(platform_events.c.processed_at.is_(None))
        with self.db.connect() as connection:
            return int(connection.execute(query).scalar_one())

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
        database's single writer."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._lock:
            query = (
                select(platform_events)
                .where(platform_events.c.processed_at.is_(None))
                .order_by(platform_events.c.seq)
                .limit(limit)
            )
            with self.db.connect() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return 0
            applied: list[_Effects] = []
            with self.db.begin() as connection:
                for row in rows:
                    effects = self._apply_one(connection, row)
                    if effects is not None:
                        applied.append(effects)
            for effects in applied:
                for player_id, event, data in effects.publications:
                    try:
                        self.publish(player_id, event, data)
                    except Exception:
                        logger.exception("publishing %s to %s failed", event, player_id)
            return len(applied)

    def _apply_one(self, connection: Connection, row: Any) -> _Effects | None:
        now = self.clock.now()
        stamp = to_rfc3339(now)
        # Claimed first: another engine on the same database that got here first makes this
        # a no-op, and the write lock is held from here to the commit.
        claimed = connection.execute(
            update(platform_events)
            .where(platform_events.c.seq == row.seq, platform_events.c.processed_at.is_(None))
            .values(processed_at=stamp)
        ).rowcount
        if claimed != 1:
            return None
        try:
            with connection.begin_nested():
                body = json.loads(row.body, parse_float=Decimal)
                if not isinstance(body, dict):
                    raise MalformedEvent("the body is not a JSON object")
                occurred = to_rfc3339(parse_rfc3339(row.occurred_at))
                return self._apply(connection, row, body, occurred, now)
        except (ValueError, InvalidOperation) as error:
            # The gateway validates what it accepts; one that slipped through must not block
            # every later event: it counts nothing and is not retried.
            logger.warning("event %s (%s) skipped: %s", row.seq, row.event_key, error)
            return _Effects()

    def _apply(
        self, connection: Connection, row: Any, body: dict[str, Any], occurred: str, now: datetime
    ) -> _Effects:
        activities: list[Activity] = []
        player = self._aggregates(connection, row.player_id)
        kind = row.kind
        if kind in ("money", "round"):
            if body.get("transactionStatus") != APPROVED:
                return _Effects()
            activities += self._transaction(player, kind, body)
            currency = body.get("currency")
            key = f"{occurred}|{row.event_key}"
            if isinstance(currency, str) and (player.currency_key or "") < key:
                player.currency, player.currency_key = currency, key
        elif kind == "registration":
            if player.registered_at is None or occurred < player.registered_at:
                player.registered_at = occurred
        elif kind == "login":
            if player.last_login_at is None or occurred > player.last_login_at:
                player.last_login_at = occurred
            day = occurred[:10]
            known = connection.execute(
                select(engine_login_days.c.day).where(
                    engine_login_days.c.player_id == player.player_id,
                    engine_login_days.c.day == day,
                )
            ).first()
            if known is None:
                connection.execute(
                    insert(engine_login_days).values(player_id=player.player_id, day=day)
                )
                player.login_days += 1
            activities.append(Activity("login"))
        elif kind == "tags":
            tags = body.get("tags")
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise MalformedEvent("tags is not a list of strings")
            player.tags = tuple(sorted(set(player.tags) | set(tags)))
        else:
            raise MalformedEvent(f"unknown kind {kind!r}")
        return self._settle(connection, player, activities, now)

    def _transaction(
        self, player: Aggregates, kind: str, body: Mapping[str, Any]
    ) -> list[Activity]:
        kind_of = body.get("transactionType")
        if kind == "money":
            if kind_of == "DEPOSIT":
                amount = _amount(body, "amount")
                player.deposits += amount
                player.deposit_count += 1
                return [Activity("deposit", amount)]
            if kind_of == "WITHDRAW":
                amount = _amount(body, "amount")
                player.withdrawals += amount
                return [Activity("withdrawal", amount)]
            return []  # MANUAL_CREDIT / MANUAL_DEBIT: stored in the log, counted nowhere
        category = body.get("gameCategoryName")
        category = category if isinstance(category, str) else None
        amount = _amount(body, "realMoneyAmount", "bonusMoneyAmount")
        if kind_of == "BET":
            player.bets += amount
            return [Activity("wager", amount, category)]
        if kind_of == "WIN":
            player.wins += amount
            return [Activity("win", amount, category)] if amount > 0 else []
        raise MalformedEvent(f"unknown transactionType {kind_of!r}")

    def _aggregates(self, connection: Connection, player_id: str) -> Aggregates:
        row = connection.execute(
            select(engine_players).where(engine_players.c.player_id == player_id).with_for_update()
        ).first()
        return Aggregates(player_id) if row is None else Aggregates.from_row(row)

    def _settle(
        self,
        connection: Connection,
        player: Aggregates,
        activities: Sequence[Activity],
        now: datetime,
    ) -> _Effects:
        """Write `player`, count `activities` into missions, award XP, notify."""
        effects = _Effects()
        stamp = to_rfc3339(now)
        stored = self._standing(connection, player.player_id)
        before = stored or Standing(0, 1, self.config.rank_for(1))
        xp = before.xp
        missions = self._progress(connection, player.player_id)
        moved: list[MissionProgress] = []
        for progress in missions:
            was_done = progress.completed_at is not None
            if not progress.advance(activities, player.login_days):
                continue
            # Progress keeps counting after completion, so any order ends on the same values.
            if not was_done:
                moved.append(progress)
                if progress.reached():
                    progress.completed_at = stamp
            self._store_progress(connection, player.player_id, progress, stamp)
        for progress in moved:
            effects.add(player.player_id, "missions:on:progress", progress.to_json())
            if progress.completed_at is not None:
                xp += progress.mission.xp
                self._notify(
                    connection,
                    effects,
                    player.player_id,
                    "missionCompleted",
                    stamp,
                    mission=progress.mission,
                )
        level = self.config.level_for(xp)
        standing = Standing(xp, level, self.config.rank_for(level))
        self._store_standing(connection, player.player_id, stored, standing, stamp)
        if standing.xp != before.xp:
            effects.add(player.player_id, "ranks:on:xpUp", {"xpBalance": standing.xp})
        for reached in range(before.level + 1, standing.level + 1):
            effects.add(player.player_id, "ranks:on:levelUp", {"level": {"levelNumber": reached}})
            self._notify(connection, effects, player.player_id, "levelUp", stamp, level=reached)
        if standing.rank != before.rank:
            self._notify(
                connection,
                effects,
                player.player_id,
                "rankUp",
                stamp,
                rank=standing.rank,
                level=standing.level,
            )
        segments = segments_of(self.config, player, now)
        for segment in segments:
            if segment not in player.segments:
                self._notify(
                    connection, effects, player.player_id, "segmentEntered", stamp, segment=segment
                )
        player.segments = segments
        values = player.row(stamp)
        if (
            connection.execute(
                update(engine_players)
                .where(engine_players.c.player_id == player.player_id)
                .values(**values)
            ).rowcount
            == 0
        ):
            connection.execute(insert(engine_players).values(**values))
        return effects

    def _standing(self, connection: Connection, player_id: str) -> Standing | None:
        row = connection.execute(
            select(engine_ranks).where(engine_ranks.c.player_id == player_id)
        ).first()
        return None if row is None else Standing(row.xp_balance, row.level, row.rank)

    def _store_standing(
        self,
        connection: Connection,
        player_id: str,
        before: Standing | None,
        standing: Standing,
        stamp: str,
    ) -> None:
        values = {"xp_balance": standing.xp, "level": standing.level, "rank": standing.rank}
        if before is None:
            connection.execute(
                insert(engine_ranks).values(player_id=player_id, updated_at=stamp, **values)
            )
        elif standing != before:
            connection.execute(
                update(engine_ranks)
                .where(engine_ranks.c.player_id == player_id)
                .values(updated_at=stamp, **values)
            )

    def _progress(self, connection: Connection, player_id: str) -> list[MissionProgress]:
        """The player's progress in every configured mission (zero where none is stored)."""
        rows = connection.execute(
            select(engine_missions).where(engine_missions.c.player_id == player_id)
        )
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

    def _store_progress(
        self, connection: Connection, player_id: str, progress: MissionProgress, stamp: str
    ) -> None:
        values = {
            "progress": json.dumps([_text(value) for value in progress.values]),
            "completed_at": progress.completed_at,
            "updated_at": stamp,
        }
        if progress.stored:
            connection.execute(
                update(engine_missions)
                .where(
                    engine_missions.c.player_id == player_id,
                    engine_missions.c.mission_id == progress.mission.id,
                )
                .values(**values)
            )
        else:
            connection.execute(
                insert(engine_missions).values(
                    player_id=player_id, mission_id=progress.mission.id, **values
                )
            )
            progress.stored = True

    def _notify(
        self,
        connection: Connection,
        effects: _Effects,
        player_id: str,
        trigger: str,
        stamp: str,
        *,
        mission: Mission | None = None,
        segment: str | None = None,
        level: int | None = None,
        rank: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {"segment": segment, "level": level, "rank": rank}
        if mission is not None:
            fields |= {"missionId": mission.id, "missionName": mission.name, "xp": mission.xp}
        data = {key: value for key, value in fields.items() if value is not None}
        for rule in self.config.notifications:
            if rule.trigger != trigger:
                continue
            if rule.segment is not None and rule.segment != segment:
                continue
            if rule.mission is not None and (mission is None or rule.mission != mission.id):
                continue
            values = {
                "kind": trigger,
                "title": rule.title.format_map(data),
                "message": rule.message.format_map(data),
                "data": json.dumps(data),
                "created_at": stamp,
            }
            inserted = connection.execute(
                insert(engine_notifications).values(player_id=player_id, **values)
            )
            key = inserted.inserted_primary_key
            notification = _notification(int(key[0]) if key else 0, values)
            effects.add(player_id, "notifications:on:new", notification)

    # -- reading --------------------------------------------------------------------------

    def player_state(self, player_id: str) -> dict[str, Any] | None:
        """The player's aggregates, segments (at the service clock's now), XP balance, level
        and rank; None when no event of the player has been applied."""
        with self.db.connect() as connection:
            row = connection.execute(
                select(engine_players).where(engine_players.c.player_id == player_id)
            ).first()
            standing = self._standing(connection, player_id)
        if row is None:
            return None
        player = Aggregates.from_row(row)
        if standing is None:
            standing = Standing(0, 1, self.config.rank_for(1))
        return {
            **player.to_json(),
            "segments": list(segments_of(self.config, player, self.clock.now())),
            "xpBalance": standing.xp,
            "level": standing.level,
            "rank": standing.rank,
        }

    def missions(self, player_id: str) -> list[dict[str, Any]]:
        """Every configured mission with the player's progress, in the configuration's order
        (every one at 0 for a player the engine has no state for) (D67)."""
        with self.db.connect() as connection:
            progress = self._progress(connection, player_id)
        return [item.to_json() for item in progress]

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
            _leader(index, row.player_id, Standing(row.xp_balance, row.level, row.rank))
            for index, row in enumerate(rows, start=1)
        ]
        if mine is None:
            mine = Standing(0, 1, self.config.rank_for(1))
        return {"items": items, "me": _leader(position, player_id, mine)}

    def notifications(self, player_id: str) -> list[dict[str, Any]]:
        """The player's notifications, newest first (D69)."""
        query = (
            select(engine_notifications)
            .where(engine_notifications.c.player_id == player_id)
            .order_by(engine_notifications.c.id.desc())
        )
        with self.db.connect() as connection:
            return [_notification(row.id, row._asdict()) for row in connection.execute(query)]


def _leader(position: int | None, player_id: str, standing: Standing) -> dict[str, Any]:
    return {
        "position": position,
        "playerId": player_id,
        "xpBalance": standing.xp,
        "level": {"levelNumber": standing.level},
        "rank": {"name": standing.rank},
    }


def _notification(number: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """A notification as the Frontend reads it (D69): `type` is its trigger's."""
    return {
        "id": str(number),
        "type": values["kind"],
        "title": values["title"],
        "message": values["message"],
        "data": json.loads(values["data"]),
        "createdAt": values["created_at"],
        "read": False,
    }
