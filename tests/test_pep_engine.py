"""The reference PEP's reactive engine on a real SQLite file (and on PostgreSQL, where a test
takes `database` or `store`): exact aggregates, order
independence, one count per idempotency key, crash-safe resumption, missions, XP, levels,
ranks, notifications, segments on the service clock, and configuration errors."""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pepharness.mocks.core.clock import Clock, to_rfc3339
from pepharness.mocks.pep.engine import (
    DEFAULT_CONFIG,
    EngineConfig,
    NotificationRule,
    ReactiveEngine,
    engine_players,
)
from pepharness.mocks.pep.engine_domain import Rules
from pepharness.mocks.pep.events import EventLog, NewEvent, platform_events
from pepharness.mocks.pep.players import Players
from pepharness.mocks.pep.store import Store, database_url

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
DEFAULT = EngineConfig.load()

Published = list[tuple[str, str, dict[str, Any]]]


@pytest.fixture
def clock() -> Clock:
    """A clock standing still at T0 until a test moves it."""
    return Clock(lambda: T0)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A SQLite file, and the session's PostgreSQL server without the PEP's tables (skipped
    without PostgreSQL, saying why)."""
    if request.param == "sqlite":
        return tmp_path / "pep.sqlite3"
    return str(request.getfixturevalue("postgresql"))


@pytest.fixture
def store(database: Path | str) -> Iterator[Store]:
    opened = Store(database_url(database))
    yield opened
    opened.close()


@pytest.fixture
def published() -> Published:
    return []


@pytest.fixture
def engine(store: Store, clock: Clock, published: Published) -> ReactiveEngine:
    return ReactiveEngine(
        store.engine,
        clock=clock,
        config=DEFAULT,
        publish=lambda player, event, data: published.append((player, event, data)),
    )


# -- events, as the gateway stores them --------------------------------------------------------


def money(
    player: str,
    transaction: str,
    amount: float,
    *,
    kind: str = "DEPOSIT",
    status: str = "APPROVED",
    rate: float = 1,
    currency: str = "EUR",
    when: datetime = T0,
) -> NewEvent:
    body = {
        "playerId": player,
        "amount": amount,
        "exchangeRate": rate,
        "date": to_rfc3339(when),
        "currency": currency,
        "transactionStatus": status,
        "transactionType": kind,
        "transactionId": transaction,
        "realMoneyBalance": 0,
        "bonusMoneyBalance": 0,
    }
    return NewEvent(f"money:{transaction}", "money", player, when, body)


def round_item(
    player: str,
    transaction: str,
    real: float,
    bonus: float = 0,
    *,
    kind: str = "BET",
    category: str = "Slots",
    status: str = "APPROVED",
    rate: float = 1,
    when: datetime = T0,
) -> NewEvent:
    body = {
        "playerId": player,
        "realMoneyAmount": real,
        "bonusMoneyAmount": bonus,
        "exchangeRate": rate,
        "date": to_rfc3339(when),
        "currency": "EUR",
        "transactionStatus": status,
        "transactionType": kind,
        "transactionId": transaction,
        "gameCategoryId": "1",
        "gameCategoryName": category,
        "gameProviderId": "7",
        "gameProviderName": "Provider",
        "gameId": "1001",
        "gameName": "Game",
        "gameSessionId": "s1",
        "realMoneyBalance": 0,
        "bonusMoneyBalance": 0,
    }
    return NewEvent(f"round:{kind}:{transaction}", "round", player, when, body)


def login(player: str, when: datetime) -> NewEvent:
    body = {"playerId": player, "date": to_rfc3339(when)}
    return NewEvent(f"login:{player}:{to_rfc3339(when)}", "login", player, when, body)


def registration(player: str, when: datetime) -> NewEvent:
    body = {"playerId": player, "registrationDevice": "web", "date": to_rfc3339(when)}
    return NewEvent(f"registration:{player}", "registration", player, when, body)


def tags(player: str, *names: str) -> NewEvent:
    body = {"playerId": player, "tags": list(names)}
    return NewEvent(f"tags:{player}:{','.join(sorted(names))}", "tags", player, T0, body)


def append(store: Store, *events: NewEvent) -> list[bool]:
    stored = EventLog(store.engine).append(events, client_id="pep-demo-client", received_at=T0)
    return [item.duplicate for item in stored]


def named(published: Published, event: str, player: str = "p1") -> list[dict[str, Any]]:
    return [data for who, name, data in published if name == event and who == player]


def state_of(engine: ReactiveEngine, player: str) -> dict[str, Any]:
    state = engine.player_state(player)
    assert state is not None, f"the engine has no state for {player}"
    return state


def history() -> list[NewEvent]:
    """A player's mixed history: decimals that floats would not sum exactly, every kind."""
    days = [T0 - timedelta(days=offset, hours=offset) for offset in range(6)]
    return [
        registration("p1", T0 - timedelta(days=3)),
        money("p1", "d1", 0.1, rate=1.1, when=days[1]),
        money("p1", "d2", 0.2, rate=1.1, when=days[2]),
        money("p1", "d3", 60.3, currency="USD", rate=0.9, when=days[0]),
        money("p1", "w1", 10.05, kind="WITHDRAW", when=days[3]),
        money("p1", "x1", 999, status="REJECTED", when=days[4]),
        money("p1", "m1", 500, kind="MANUAL_CREDIT", when=days[5]),
        round_item("p1", "r1", 120.1, 0.7, when=days[1]),
        round_item("p1", "r2", 80.3, when=days[2], category="SLOTS"),
        round_item("p1", "r3", 55, when=days[3], category="table"),
        round_item("p1", "r1", 33.33, kind="WIN", when=days[1]),
        round_item("p1", "r2", 0, kind="WIN", when=days[2]),
        login("p1", days[0]),
        login("p1", days[1]),
        login("p1", days[1] + timedelta(minutes=5)),
        login("p1", days[2]),
        tags("p1", "b", "a"),
        tags("p1", "c"),
        money("p2", "d4", 20, when=days[4]),
    ]


# -- aggregates --------------------------------------------------------------------------------


def test_money_and_rounds_are_summed_in_eur_exactly(store: Store, engine: ReactiveEngine) -> None:
    append(store, *history())
    assert engine.apply_pending() == len(history())
    state = engine.player_state("p1")
    assert state is not None
    # 0.1*1.1 + 0.2*1.1 + 60.3*0.9 = 0.11 + 0.22 + 54.27; REJECTED and MANUAL_* count nothing.
    assert state["deposits"] == 54.6 and state["depositCount"] == 3
    assert state["withdrawals"] == 10.05
    assert state["bets"] == 120.8 + 80.3 + 55  # real + bonus
    assert state["wins"] == 33.33
    assert state["ggr"] == 222.77
    assert state["currency"] == "USD"  # the latest-dated transaction's
    assert state["lastLoginAt"] == to_rfc3339(T0) and state["loginDays"] == 3
    assert state["registeredAt"] == to_rfc3339(T0 - timedelta(days=3))
    assert state["tags"] == ["a", "b", "c"]
    assert state["segments"] == ["new"]
    assert engine.player_state("p2") is not None
    assert engine.player_state("nobody") is None
    assert engine.pending() == 0 and engine.apply_pending() == 0


def test_any_arrival_order_gives_the_same_final_state(tmp_path: Path, clock: Clock) -> None:
    events = history()
    results = []
    for attempt in range(4):
        ordered = (
            list(events) if attempt == 0 else random.Random(attempt).sample(events, len(events))
        )
        if attempt == 3:
            ordered.reverse()
        store = Store(database_url(tmp_path / f"order-{attempt}.sqlite3"))
        engine = ReactiveEngine(store.engine, clock=clock, config=DEFAULT)
        append(store, *ordered)
        engine.apply_pending()
        notes = sorted((n["type"], n["message"]) for n in engine.notifications("p1"))
        results.append(
            (
                engine.player_state("p1"),
                engine.player_state("p2"),
                engine.missions("p1"),
                engine.leaderboard("p1", 10),
                notes,
            )
        )
        store.close()
    assert all(result == results[0] for result in results[1:])


def test_a_repeated_idempotency_key_is_one_row_counted_once(
    store: Store, engine: ReactiveEngine
) -> None:
    assert append(store, money("p1", "d1", 40)) == [False]
    assert append(store, money("p1", "d1", 40), money("p1", "d2", 5)) == [True, False]
    assert EventLog(store.engine).count() == 2
    engine.apply_pending()
    state = engine.player_state("p1")
    assert state is not None
    assert state["deposits"] == 45 and state["depositCount"] == 2


def test_an_engine_stopped_midway_resumes_without_loss_or_double_count(
    database: Path | str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    deposits = [money("p1", f"d{index}", 10 + index) for index in range(10)]
    first = Store(database_url(database))
    append(first, *deposits)
    engine = ReactiveEngine(first.engine, clock=clock, config=DEFAULT)
    assert engine.apply_pending(limit=4) == 4

    # A crash inside the sixth event: the batch's transaction (the fifth event and the sixth)
    # rolls back, effects and processed_at alike.
    calls = {"n": 0}
    settle = Rules._settle  # the domain's (engine_domain.py), called for each event

    def crash(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return settle(*args, **kwargs)

    monkeypatch.setattr(Rules, "_settle", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        engine.apply_pending()
    assert EventLog(first.engine).count(pending_only=True) == 6
    state = engine.player_state("p1")
    assert state is not None and state["depositCount"] == 4
    first.close()

    second = Store(database_url(database))
    restarted = ReactiveEngine(second.engine, clock=clock, config=DEFAULT)
    assert restarted.apply_pending() == 6
    assert restarted.apply_pending() == 0
    state = restarted.player_state("p1")
    assert state is not None
    assert state["depositCount"] == 10 and state["deposits"] == sum(10 + i for i in range(10))
    assert state["xpBalance"] == 0  # no single deposit reached 50 EUR
    with second.engine.connect() as connection:
        unprocessed = connection.execute(
            select(platform_events.c.seq).where(platform_events.c.processed_at.is_(None))
        ).all()
        players = connection.execute(select(engine_players.c.player_id)).all()
    assert unprocessed == [] and len(players) == 1
    second.close()


def test_an_unreadable_event_is_skipped_and_blocks_nothing(
    store: Store, engine: ReactiveEngine
) -> None:
    broken = money("p1", "bad", 10)
    broken.body["amount"] = "ten"
    append(store, broken, money("p1", "good", 7))
    assert engine.apply_pending() == 2
    state = engine.player_state("p1")
    assert state is not None and state["deposits"] == 7 and engine.pending() == 0


# A player's events of every kind, as (kind, player, day, amount): amounts around the default
# missions' targets and the VIP threshold, some rejected, some unreadable.
EVENT_KINDS = (
    "deposit",
    "withdraw",
    "slots bet",
    "table bet",
    "win",
    "login",
    "registration",
    "tags",
    "rejected",
    "unreadable",
)
mixes = st.lists(
    st.tuples(
        st.sampled_from(EVENT_KINDS),
        st.sampled_from(("p1", "p2", "p3")),
        st.integers(min_value=0, max_value=4),
        st.sampled_from((0, 0.1, 10, 49.99, 50, 120.5, 999.99)),
    ),
    min_size=1,
    max_size=60,
)


def mixed_events(mix: list[tuple[str, str, int, float]]) -> list[NewEvent]:
    events = []
    for number, (kind, player, day, amount) in enumerate(mix):
        when = T0 - timedelta(days=day, hours=number % 5)
        key = f"t{number}"
        if kind == "deposit":
            events.append(money(player, key, amount, rate=1.1, when=when))
        elif kind == "withdraw":
            events.append(money(player, key, amount, kind="WITHDRAW", when=when))
        elif kind in ("slots bet", "table bet"):
            category = "Slots" if kind == "slots bet" else "Table"
            events.append(round_item(player, key, amount, 1, category=category, when=when))
        elif kind == "win":
            events.append(round_item(player, key, amount, kind="WIN", when=when))
        elif kind == "login":
            events.append(login(player, when))
        elif kind == "registration":
            events.append(registration(player, when))
        elif kind == "tags":
            events.append(tags(player, f"t{day}"))
        elif kind == "rejected":
            events.append(money(player, key, amount, status="REJECTED", when=when))
        else:
            unreadable = money(player, key, amount, when=when)
            unreadable.body["exchangeRate"] = "one"
            events.append(unreadable)
    return events


def applied(database: Path, events: list[NewEvent], limit: int) -> tuple[Published, list[Any], int]:
    """What applying `events` `limit` at a time comes to: the publications in their order, and
    every player's state, missions, notifications and leaderboard row."""
    store = Store(database_url(database))
    published: Published = []
    config = EngineConfig(
        DEFAULT.segments,
        DEFAULT.missions,
        DEFAULT.levels,
        DEFAULT.ranks,
        (*DEFAULT.notifications, NotificationRule("rankUp", "Rank up", "{rank} at {level}")),
    )
    engine = ReactiveEngine(
        store.engine,
        clock=Clock(lambda: T0),
        config=config,
        publish=lambda player, event, data: published.append((player, event, data)),
    )
    append(store, *events)
    calls = 0
    while engine.apply_pending(limit):
        calls += 1
    players = [
        (
            engine.player_state(player),
            engine.missions(player),
            engine.notifications(player),
            engine.leaderboard(player, 3),
        )
        for player in ("p1", "p2", "p3")
    ]
    store.close()
    return published, players, calls


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(mix=mixes)
def test_a_batch_applies_exactly_as_its_events_one_at_a_time(
    mix: list[tuple[str, str, int, float]],
) -> None:
    events = mixed_events(mix)
    with tempfile.TemporaryDirectory() as directory:
        one_by_one = applied(Path(directory) / "one.sqlite3", events, limit=1)
        batched = applied(Path(directory) / "batch.sqlite3", events, limit=500)
    stored = len({event.key for event in events})
    assert (one_by_one[2], batched[2]) == (stored, 1)
    assert batched[1] == one_by_one[1]
    assert batched[0] == one_by_one[0]


# -- missions, XP, levels, ranks, notifications -------------------------------------------------


def test_missions_award_xp_levels_ranks_and_notify(
    store: Store, engine: ReactiveEngine, published: Published
) -> None:
    append(store, money("p1", "small", 49.99), money("p2", "big", 75))
    engine.apply_pending()
    assert named(published, "ranks:on:xpUp") == []
    assert named(published, "ranks:on:xpUp", "p2") == [{"xpBalance": 100}]

    append(store, money("p1", "d1", 40, rate=1.25))  # 50 EUR
    engine.apply_pending()
    first = {m["_id"]: m for m in engine.missions("p1")}["first-deposit"]
    assert first["status"] == "COMPLETED" and first["rewardClaimStatus"] == "CLAIMED"
    assert first["objectives"][0]["progress"] == 50 and first["objectives"][0]["completed"]
    assert named(published, "ranks:on:xpUp") == [{"xpBalance": 100}]
    assert named(published, "ranks:on:levelUp") == [{"level": {"levelNumber": 2}}]

    append(
        store,
        round_item("p1", "b1", 100, 20, category="SLOTS"),
        round_item("p1", "b2", 500, category="Table Games"),
        round_item("p1", "b1", 300, kind="WIN", category="slots"),
    )
    engine.apply_pending()
    wager = {m["_id"]: m for m in engine.missions("p1")}["slots-wager"]
    assert wager["status"] == "IN_PROGRESS" and wager["objectives"][0]["progress"] == 120
    assert wager["rewardClaimStatus"] == "NOT_AVAILABLE"
    append(store, round_item("p1", "b3", 80, category="slots"))
    engine.apply_pending()

    for day in (0, 1, 1, 2):
        append(store, login("p1", T0 + timedelta(days=day, hours=day)))
    engine.apply_pending()

    state = engine.player_state("p1")
    assert state is not None
    assert (state["xpBalance"], state["level"], state["rank"]) == (300, 3, "Silver")
    assert all(m["status"] == "COMPLETED" for m in engine.missions("p1"))
    assert named(published, "ranks:on:xpUp") == [
        {"xpBalance": 100},
        {"xpBalance": 250},
        {"xpBalance": 300},
    ]
    assert named(published, "ranks:on:levelUp") == [
        {"level": {"levelNumber": 2}},
        {"level": {"levelNumber": 3}},
    ]
    progress = named(published, "missions:on:progress")
    assert {item["_id"] for item in progress} == {
        "first-deposit",
        "slots-wager",
        "three-login-days",
    }
    assert progress[-1]["_id"] == "three-login-days" and progress[-1]["status"] == "COMPLETED"
    assert [p["objectives"][0]["progress"] for p in progress if p["_id"] == "three-login-days"] == [
        1,
        2,
        3,
    ]

    notes = engine.notifications("p1")
    assert [n["type"] for n in reversed(notes)] == [
        "missionCompleted",
        "levelUp",
        "missionCompleted",
        "levelUp",
        "missionCompleted",
    ]
    assert (
        notes[-1]["message"]
        == 'You completed "Make a deposit of 50 EUR or more" and earned 100 XP.'
    )
    assert named(published, "notifications:on:new") == list(reversed(notes))

    board = engine.leaderboard("p2", 1)
    assert [row["playerId"] for row in board["items"]] == ["p1"]
    assert board["items"][0] == {
        "position": 1,
        "playerId": "p1",
        "xpBalance": 300,
        "level": {"levelNumber": 3},
        "rank": {"name": "Silver"},
    }
    assert board["me"]["position"] == 2 and board["me"]["xpBalance"] == 100
    assert engine.leaderboard("stranger", 5)["me"]["position"] is None


def test_leaderboard_ties_go_by_player_id(store: Store, engine: ReactiveEngine) -> None:
    append(store, *(money(player, f"d-{player}", 60) for player in ("pc", "pa", "pb")))
    append(store, money("pz", "d-pz", 5))
    engine.apply_pending()
    board = engine.leaderboard("pb", 25)
    assert [row["playerId"] for row in board["items"]] == ["pa", "pb", "pc", "pz"]
    assert board["me"]["position"] == 2


def test_a_win_of_zero_is_not_a_win_for_missions(store: Store, clock: Clock) -> None:
    config = EngineConfig.from_mapping(
        {
            "segments": {},
            "missions": [
                {
                    "id": "win-once",
                    "name": "Win on slots",
                    "xp": 10,
                    "objectives": [
                        {
                            "type": "win",
                            "measure": "count",
                            "target": 1,
                            "gameCategoryName": "Slots",
                        }
                    ],
                }
            ],
            "levels": [0],
            "ranks": [{"name": "Only", "fromLevel": 1}],
        }
    )
    engine = ReactiveEngine(store.engine, clock=clock, config=config)
    append(store, round_item("p1", "r1", 0, kind="WIN"))
    engine.apply_pending()
    assert engine.missions("p1")[0]["status"] == "IN_PROGRESS"
    append(store, round_item("p1", "r2", 0, 0.5, kind="WIN", category="slots"))
    engine.apply_pending()
    assert engine.missions("p1")[0]["status"] == "COMPLETED"
    state = engine.player_state("p1")
    assert state is not None and state["xpBalance"] == 10


# -- segments ----------------------------------------------------------------------------------


def test_segments_follow_aggregates_and_the_service_clock(
    store: Store, engine: ReactiveEngine, clock: Clock, published: Published
) -> None:
    append(store, registration("p1", T0 - timedelta(days=1)), login("p1", T0))
    engine.apply_pending()
    state = engine.player_state("p1")
    assert state is not None and state["segments"] == ["new"]

    append(store, money("p1", "d1", 999.99))
    engine.apply_pending()
    append(store, money("p1", "d2", 0.01), money("p1", "d3", 5000))
    engine.apply_pending()
    state = engine.player_state("p1")
    assert state is not None and state["segments"] == ["vip", "new"]
    vip = [n for n in engine.notifications("p1") if n["type"] == "segmentEntered"]
    assert len(vip) == 1 and vip[0]["title"] == "Welcome to VIP"
    assert vip[0]["data"] == {"segment": "vip"}

    clock.advance(timedelta(days=6).total_seconds())
    assert state_of(engine, "p1")["segments"] == ["vip"]
    clock.advance(timedelta(days=24).total_seconds())
    assert state_of(engine, "p1")["segments"] == ["vip", "dormant"]
    append(store, login("p1", clock.now()))
    engine.apply_pending()
    assert state_of(engine, "p1")["segments"] == ["vip"]


def test_the_player_document_takes_ranks_from_the_engine_state(
    store: Store, engine: ReactiveEngine
) -> None:
    players = Players(42, {})
    seeded = players.document("p1")
    assert players.document("p1", engine.player_state("p1")) == seeded
    append(store, money("p1", "d1", 60))
    engine.apply_pending()
    document = players.document("p1", engine.player_state("p1"))
    assert document["ranksData"] == {
        "rank": {"name": "Bronze"},
        "level": {"levelNumber": 2},
        "xpBalance": 100,
    }
    assert {k: v for k, v in document.items() if k != "ranksData"} == {
        k: v for k, v in seeded.items() if k != "ranksData"
    }


# -- running and resetting ---------------------------------------------------------------------


def test_the_background_thread_applies_events_promptly(
    store: Store, engine: ReactiveEngine, published: Published
) -> None:
    engine.start()
    try:
        append(store, money("p1", "d1", 60))
        engine.wake()
        assert engine.converged(5)
        assert named(published, "ranks:on:xpUp") == [{"xpBalance": 100}]
        append(store, money("p1", "d2", 1))  # no wake: the poll finds it
        deadline = time.monotonic() + 5
        while engine.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.pending() == 0 and engine.converged(5)
        assert state_of(engine, "p1")["depositCount"] == 2
    finally:
        engine.stop()
    assert not engine.running


def test_reset_forgets_the_engine_state_but_keeps_the_log(
    store: Store, engine: ReactiveEngine
) -> None:
    append(store, money("p1", "d1", 60), login("p1", T0))
    engine.apply_pending()
    engine.reset()
    assert engine.player_state("p1") is None
    assert engine.notifications("p1") == []
    assert engine.leaderboard("p1", 5)["items"] == []
    assert EventLog(store.engine).count() == 2


# -- configuration -----------------------------------------------------------------------------


def test_the_shipped_configuration_has_the_default_missions_levels_and_ranks() -> None:
    assert EngineConfig.load(None) == EngineConfig.load(DEFAULT_CONFIG)
    missions = {mission.id: mission for mission in DEFAULT.missions}
    assert (missions["first-deposit"].xp, missions["first-deposit"].objectives[0].target) == (
        100,
        50,
    )
    slots = missions["slots-wager"].objectives[0]
    assert (missions["slots-wager"].xp, slots.target, slots.game_category) == (150, 200, "slots")
    assert missions["three-login-days"].objectives[0].measure == "days"
    assert [DEFAULT.level_for(xp) for xp in (0, 99, 100, 249, 250, 499, 500)] == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
    ]
    assert [DEFAULT.rank_for(level) for level in (1, 3, 5, 7, 10)] == [
        "Bronze",
        "Silver",
        "Gold",
        "Platinum",
        "Platinum",
    ]
    assert [segment.name for segment in DEFAULT.segments] == ["vip", "dormant", "new"]


def _config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "segments": {"vip": {"depositsAtLeast": 1000}},
        "missions": [
            {
                "id": "m",
                "name": "M",
                "xp": 5,
                "objectives": [{"type": "deposit", "measure": "sum", "target": 10}],
            }
        ],
        "levels": [0, 10],
        "ranks": [{"name": "Bronze", "fromLevel": 1}],
        "notifications": [{"trigger": "levelUp", "title": "Up", "message": "Level {level}"}],
    }
    base.update(changes)
    return base


def _objective(**fields: Any) -> dict[str, Any]:
    objective = {"type": "deposit", "measure": "sum", "target": 10, **fields}
    return _config(missions=[{"id": "m", "name": "M", "xp": 5, "objectives": [objective]}])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "top level: must be a mapping"),
        ({k: v for k, v in _config().items() if k != "levels"}, "missing key\\(s\\): levels"),
        (_config(extra=1), "unknown key\\(s\\): extra"),
        (_config(segments={"vip": {}}), "segments.vip: needs exactly one condition"),
        (_config(segments={"vip": {"depositsAbove": 3}}), "unknown key\\(s\\): depositsAbove"),
        (_config(segments={"old": {"noLoginForDays": 0}}), "noLoginForDays: must be an integer"),
        (_objective(type="bonus"), "objectives\\[0\\].type: must be one of"),
        (_objective(measure="days"), "measure: for deposit must be one of sum, count, max"),
        (_objective(target=0), "target: must be above 0"),
        (_objective(target="ten"), "target: must be a number"),
        (_objective(measure="count", target=1.5), "must be a whole number"),
        (_objective(gameCategoryName="slots"), "applies to wager and win only"),
        (
            _config(missions=[_config()["missions"][0], _config()["missions"][0]]),
            "missions\\[1\\].id: 'm' is used by another mission",
        ),
        (_config(levels=[10, 20]), "levels\\[0\\]: level 1 starts at 0 XP"),
        (_config(levels=[0, 5, 5]), "levels\\[2\\]: XP thresholds must increase"),
        (_config(ranks=[{"name": "A", "fromLevel": 2}]), "the first rank starts at level 1"),
        (
            _config(ranks=[{"name": "A", "fromLevel": 1}, {"name": "B", "fromLevel": 3}]),
            "ranks\\[1\\].fromLevel: there are only 2 levels",
        ),
        (
            _config(notifications=[{"trigger": "levelUp", "title": "x", "message": "{rank}"}]),
            "unknown placeholder\\(s\\) rank; allowed: \\{level\\}",
        ),
        (
            _config(notifications=[{"trigger": "segmentEntered", "title": "x", "message": "y"}]),
            "segment: is required by segmentEntered",
        ),
        (
            _config(
                notifications=[
                    {"trigger": "segmentEntered", "segment": "gold", "title": "x", "message": "y"}
                ]
            ),
            "'gold' is not a configured segment",
        ),
        (
            _config(notifications=[{"trigger": "birthday", "title": "x", "message": "y"}]),
            "trigger: must be one of",
        ),
    ],
)
def test_an_invalid_configuration_is_refused_with_its_place(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"engine config <mapping>: .*{message}"):
        EngineConfig.from_mapping(data)


def test_an_unreadable_configuration_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        EngineConfig.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("missions: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not YAML"):
        EngineConfig.load(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text("levels: 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"engine config {bad}: top level: missing key"):
        EngineConfig.load(bad)
