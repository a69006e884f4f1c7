"""The reactive engine's domain: aggregates, segments, missions, XP, levels, ranks and
notifications, applied to a player's state in memory — no database, no thread, no Flask.

`engine.py` reads a batch's events and players from the database into these objects, has
`Rules.apply` apply the events one after the other, and writes back what changed; every rule
of what an event does to a player lives here, so it is tested without a database
(tests/test_pep_engine_domain.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pepharness.mocks.core.clock import parse_rfc3339, to_rfc3339
from pepharness.mocks.pep.engine_config import (
    ZERO,
    Activity,
    EngineConfig,
    Mission,
    SegmentRule,
)

APPROVED = "APPROVED"

Publish = Callable[[str, str, dict[str, Any]], None]
Publication = tuple[str, str, dict[str, Any]]
logger = logging.getLogger("pepharness.pep.engine")


def json_number(value: Decimal) -> int | float:
    """A decimal as a JSON number: whole values as integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def decimal_text(value: Decimal) -> str:
    """A decimal as stored (text, exact)."""
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

    @property
    def ggr(self) -> Decimal:
        return self.bets - self.wins

    def to_json(self) -> dict[str, Any]:
        return {
            "playerId": self.player_id,
            "currency": self.currency,
            "deposits": json_number(self.deposits),
            "depositCount": self.deposit_count,
            "withdrawals": json_number(self.withdrawals),
            "bets": json_number(self.bets),
            "wins": json_number(self.wins),
            "ggr": json_number(self.ggr),
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


@dataclass
class MissionProgress:
    """One player's progress in one mission: a value per objective; `stored` when its row
    exists, `changed` when it has moved since it was read (and is to be written)."""

    mission: Mission
    values: list[Decimal]
    completed_at: str | None = None
    stored: bool = False
    changed: bool = False

    def copy(self) -> MissionProgress:
        values = list(self.values)
        return MissionProgress(self.mission, values, self.completed_at, self.stored, self.changed)

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
                "target": json_number(objective.target),
                "progress": json_number(value),
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


def _amount(body: Mapping[str, Any], *names: str) -> Decimal:
    """The EUR value of the sum of `names`, times the event's exchangeRate."""
    total: Decimal = ZERO
    for name in (*names, "exchangeRate"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise MalformedEvent(f"{name} is not a number")
        if not Decimal(value).is_finite():
            raise MalformedEvent(f"{name} is not finite")
    for name in names:
        total += Decimal(body[name])
    return total * Decimal(body["exchangeRate"])


@dataclass(frozen=True)
class Event:
    """A claimed event, its body and date read, or the `error` that makes it unreadable."""

    seq: int
    player_id: str
    kind: str
    event_key: str
    body: Mapping[str, Any]
    occurred: str
    error: Exception | None = None


def read_event(
    seq: int, player_id: str, kind: str, event_key: str, body: str, occurred_at: str
) -> Event:
    """The event stored as `body` (JSON text, its numbers read as exact decimals)."""
    try:
        document = json.loads(body, parse_float=Decimal)
        if not isinstance(document, dict):
            raise MalformedEvent("the body is not a JSON object")
        occurred = to_rfc3339(parse_rfc3339(occurred_at))
        return Event(seq, player_id, kind, event_key, document, occurred)
    except (ValueError, InvalidOperation) as error:
        return Event(seq, player_id, kind, event_key, {}, "", error)


# -- applying events ---------------------------------------------------------------------------


@dataclass
class PlayerState:
    """One player's state while a batch is applied: read once, changed in memory, its rows
    written once at the end of the batch. `stored`: its engine_players row existed when the
    batch began; `stored_standing`: its engine_ranks row then; `settled`: an event reached
    it, so its rows are written."""

    aggregates: Aggregates
    standing: Standing
    progress: list[MissionProgress]
    stored: bool
    stored_standing: Standing | None
    settled: bool = False

    def copy(self) -> PlayerState:
        return PlayerState(
            replace(self.aggregates),
            self.standing,
            [progress.copy() for progress in self.progress],
            self.stored,
            self.stored_standing,
            self.settled,
        )


@dataclass
class Effects:
    """What applying one event changed beyond its player: publications to make once the batch
    is committed, notifications to store (each with its published form, numbered when
    stored) and a login day seen for the first time."""

    publications: list[Publication] = field(default_factory=list)
    notifications: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    login_day: str | None = None

    def add(self, player_id: str, event: str, data: dict[str, Any]) -> None:
        self.publications.append((player_id, event, data))


@dataclass
class Batch:
    """The players of a batch's events and what the applied ones added, to write together."""

    players: dict[str, PlayerState]
    login_days: set[tuple[str, str]]
    new_login_days: list[dict[str, str]] = field(default_factory=list)
    notifications: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def keep(self, player: PlayerState, effects: Effects) -> None:
        """An event applied in full: its player's new state and its effects are the batch's."""
        player_id = player.aggregates.player_id
        self.players[player_id] = player
        if effects.login_day is not None:
            self.login_days.add((player_id, effects.login_day))
            self.new_login_days.append({"player_id": player_id, "day": effects.login_day})
        self.notifications += effects.notifications


class Rules:
    """What an event does to its player under `config`.

    Money counts only APPROVED transactions: DEPOSIT adds to deposits (and their count),
    WITHDRAW to withdrawals; MANUAL_CREDIT / MANUAL_DEBIT stay in the log and count nothing.
    A round's BET adds realMoneyAmount + bonusMoneyAmount to bets, its WIN to wins (only
    APPROVED items too); a WIN of 0 is no "win" for missions. Tags upserts add to the set.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def standing(self, xp: int) -> Standing:
        """The standing of `xp`: its level and rank through the configuration (D89, D90)."""
        level = self.config.level_for(xp)
        return Standing(xp, level, self.config.rank_for(level))

    def apply(self, batch: Batch, event: Event, now: datetime, stamp: str) -> list[Publication]:
        """Apply `event` to a copy of its player's state, kept only once it applied in full:
        an unreadable event changes nothing, and is not retried."""
        try:
            if event.error is not None:
                raise event.error
            player = batch.players[event.player_id].copy()
            effects = self._apply(batch, player, event, now, stamp)
        except (ValueError, InvalidOperation) as error:
            # The gateway validates what it accepts; one that slipped through must not block
            # every later event: it counts nothing and is not retried.
            logger.warning("event %s (%s) skipped: %s", event.seq, event.event_key, error)
            return []
        batch.keep(player, effects)
        return effects.publications

    def _apply(
        self, batch: Batch, player: PlayerState, event: Event, now: datetime, stamp: str
    ) -> Effects:
        effects = Effects()
        activities: list[Activity] = []
        aggregates, body, occurred = player.aggregates, event.body, event.occurred
        kind = event.kind
        if kind in ("money", "round"):
            if body.get("transactionStatus") != APPROVED:
                return effects
            activities += self._transaction(aggregates, kind, body)
            currency = body.get("currency")
            key = f"{occurred}|{event.event_key}"
            if isinstance(currency, str) and (aggregates.currency_key or "") < key:
                aggregates.currency, aggregates.currency_key = currency, key
        elif kind == "registration":
            if aggregates.registered_at is None or occurred < aggregates.registered_at:
                aggregates.registered_at = occurred
        elif kind == "login":
            if aggregates.last_login_at is None or occurred > aggregates.last_login_at:
                aggregates.last_login_at = occurred
            day = occurred[:10]
            if (aggregates.player_id, day) not in batch.login_days:
                effects.login_day = day
                aggregates.login_days += 1
            activities.append(Activity("login"))
        elif kind == "tags":
            tags = body.get("tags")
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise MalformedEvent("tags is not a list of strings")
            aggregates.tags = tuple(sorted(set(aggregates.tags) | set(tags)))
        else:
            raise MalformedEvent(f"unknown kind {kind!r}")
        self._settle(player, activities, now, stamp, effects)
        return effects

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

    def _settle(
        self,
        player: PlayerState,
        activities: Sequence[Activity],
        now: datetime,
        stamp: str,
        effects: Effects,
    ) -> None:
        """Count `activities` into `player`'s missions, award XP, notify; the player's rows
        are written at the end of the batch."""
        aggregates = player.aggregates
        player_id = aggregates.player_id
        player.settled = True
        before = player.standing
        xp = before.xp
        moved: list[MissionProgress] = []
        for progress in player.progress:
            was_done = progress.completed_at is not None
            if not progress.advance(activities, aggregates.login_days):
                continue
            progress.changed = True
            # Progress keeps counting after completion, so any order ends on the same values.
            if not was_done:
                moved.append(progress)
                if progress.reached():
                    progress.completed_at = stamp
        for progress in moved:
            effects.add(player_id, "missions:on:progress", progress.to_json())
            if progress.completed_at is not None:
                xp += progress.mission.xp
                self._notify(
                    effects, player_id, "missionCompleted", stamp, mission=progress.mission
                )
        # A standing never goes back (D91): XP only grows, and a level reached under an earlier
        # configuration (a database kept across a change of levels) is kept.
        level = max(before.level, self.config.level_for(xp))
        standing = player.standing = Standing(xp, level, self.config.rank_for(level))
        if standing.xp != before.xp:
            effects.add(player_id, "ranks:on:xpUp", {"xpBalance": standing.xp})
        for reached in range(before.level + 1, standing.level + 1):
            effects.add(player_id, "ranks:on:levelUp", {"level": {"levelNumber": reached}})
            self._notify(effects, player_id, "levelUp", stamp, level=reached)
        if standing.rank != before.rank:
            self._notify(
                effects, player_id, "rankUp", stamp, rank=standing.rank, level=standing.level
            )
        segments = segments_of(self.config, aggregates, now)
        for segment in segments:
            if segment not in aggregates.segments:
                self._notify(effects, player_id, "segmentEntered", stamp, segment=segment)
        aggregates.segments = segments

    def _notify(
        self,
        effects: Effects,
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
                "player_id": player_id,
                "kind": trigger,
                "title": rule.title.format_map(data),
                "message": rule.message.format_map(data),
                "data": json.dumps(data),
                "created_at": stamp,
            }
            notification = notification_json(0, values)  # numbered once stored
            effects.notifications.append((values, notification))
            effects.add(player_id, "notifications:on:new", notification)


def leader_json(position: int | None, player_id: str, standing: Standing) -> dict[str, Any]:
    return {
        "position": position,
        "playerId": player_id,
        "xpBalance": standing.xp,
        "level": {"levelNumber": standing.level},
        "rank": {"name": standing.rank},
    }


def notification_json(number: int, values: Mapping[str, Any]) -> dict[str, Any]:
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
