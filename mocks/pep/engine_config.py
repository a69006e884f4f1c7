"""The reactive engine's configuration: segments, missions, levels, ranks and notification
rules, read from YAML (engine.yaml ships the default) with every problem named by its place."""

from __future__ import annotations

import bisect
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("engine.yaml")
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


@dataclass(frozen=True)
class SegmentRule:
    """A segment: its name and the one condition a player meets to be in it."""

    name: str
    condition: str
    value: Decimal | int | str


@dataclass(frozen=True)
class Activity:
    """What an event means to missions: a deposit, withdrawal, wager, win or login."""

    kind: str
    amount: Decimal = ZERO
    category: str | None = None


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
