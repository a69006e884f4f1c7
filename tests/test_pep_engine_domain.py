"""The reactive engine's pure domain (mocks/pep/engine_domain.py): events applied to a player's
state in memory, no database, no thread — what the engine's SQL half reads and writes around."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pepharness.mocks.core.clock import to_rfc3339
from pepharness.mocks.pep.engine_config import ZERO, EngineConfig
from pepharness.mocks.pep.engine_domain import (
    Aggregates,
    Batch,
    Event,
    MissionProgress,
    PlayerState,
    Rules,
    Standing,
    read_event,
    segments_of,
)

CONFIG = EngineConfig.load()
RULES = Rules(CONFIG)
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
STAMP = to_rfc3339(NOW)
PLAYER = "p-1"


def batch(standing: Standing | None = None) -> Batch:
    """A batch holding PLAYER as the engine reads one it has no rows for."""
    progress = [MissionProgress(m, [ZERO] * len(m.objectives)) for m in CONFIG.missions]
    state = PlayerState(Aggregates(PLAYER), standing or RULES.standing(0), progress, False, None)
    return Batch({PLAYER: state}, set())


def event(kind: str, body: Any, seq: int = 1, occurred: str = "2025-03-10T11:00:00Z") -> Event:
    return read_event(seq, PLAYER, kind, f"{kind}:{seq}", json.dumps(body), occurred)


def money(kind: str, amount: float, status: str = "APPROVED", rate: float = 1) -> dict[str, Any]:
    return {
        "amount": amount,
        "exchangeRate": rate,
        "currency": "USD",
        "transactionStatus": status,
        "transactionType": kind,
    }


def round_item(kind: str, real: float, bonus: float = 0, category: str = "Slots") -> dict[str, Any]:
    return {
        "realMoneyAmount": real,
        "bonusMoneyAmount": bonus,
        "exchangeRate": 1,
        "gameCategoryName": category,
        "transactionStatus": "APPROVED",
        "transactionType": kind,
    }


def names(publications: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    return [name for _, name, _ in publications]


def test_a_deposit_counts_in_eur_completes_its_mission_and_levels_up() -> None:
    state = batch()
    published = RULES.apply(state, event("money", money("DEPOSIT", 40, rate=1.5)), NOW, STAMP)
    player = state.players[PLAYER]
    assert (player.aggregates.deposits, player.aggregates.deposit_count) == (60, 1)
    assert player.aggregates.currency == "USD"
    # first-deposit (max >= 50 EUR) pays 100 XP: level 2, still Bronze (Silver from level 3).
    assert player.standing == Standing(100, 2, "Bronze")
    assert names(published) == [
        "missions:on:progress",
        "notifications:on:new",
        "ranks:on:xpUp",
        "ranks:on:levelUp",
        "notifications:on:new",
    ]
    assert [values["kind"] for values, _ in state.notifications] == [
        "missionCompleted",
        "levelUp",
    ]
    assert state.notifications[0][1]["message"] == (
        'You completed "Make a deposit of 50 EUR or more" and earned 100 XP.'
    )


@pytest.mark.parametrize(
    "body",
    [money("DEPOSIT", 500, status="PENDING"), money("MANUAL_CREDIT", 500)],
    ids=["not approved", "manual credit"],
)
def test_what_is_not_an_approved_deposit_or_withdrawal_counts_nothing(body: dict[str, Any]) -> None:
    state = batch()
    assert names(RULES.apply(state, event("money", body), NOW, STAMP)) == []
    player = state.players[PLAYER]
    assert (player.aggregates.deposits, player.aggregates.withdrawals) == (0, 0)
    assert player.standing == RULES.standing(0)


def test_a_bet_is_a_wager_by_category_and_a_win_of_zero_is_no_win() -> None:
    state = batch()
    RULES.apply(state, event("round", round_item("BET", 150, 50, "SLOTS")), NOW, STAMP)
    published = RULES.apply(state, event("round", round_item("WIN", 0), seq=2), NOW, STAMP)
    player = state.players[PLAYER]
    assert (player.aggregates.bets, player.aggregates.wins) == (200, 0)
    wager = next(p for p in player.progress if p.mission.id == "slots-wager")
    assert wager.completed_at == STAMP  # gameCategoryName matches case-insensitively
    assert player.standing.xp == 150
    assert names(published) == []  # a WIN of 0 moved no mission


@pytest.mark.parametrize(
    "kind, body",
    [
        ("money", [1]),
        ("money", {**money("DEPOSIT", 60), "amount": "60"}),
        ("round", round_item("REFUND", 5)),
        ("tags", {"tags": "vip"}),
        ("unknown", {}),
    ],
    ids=["not an object", "amount as text", "unknown type", "tags not a list", "unknown kind"],
)
def test_an_unreadable_event_changes_nothing(kind: str, body: Any) -> None:
    state = batch()
    before = state.players[PLAYER]
    assert RULES.apply(state, event(kind, body), NOW, STAMP) == []
    assert state.players[PLAYER] is before
    assert before.aggregates == Aggregates(PLAYER) and not before.settled


def test_login_days_count_each_utc_day_once() -> None:
    state = batch()
    for seq, occurred in enumerate(
        ["2025-03-08T23:59:00Z", "2025-03-08T08:00:00Z", "2025-03-09T00:00:00Z"], start=1
    ):
        RULES.apply(state, event("login", {}, seq, occurred), NOW, STAMP)
    player = state.players[PLAYER]
    assert player.aggregates.login_days == 2
    assert player.aggregates.last_login_at == "2025-03-09T00:00:00.000Z"
    assert [row["day"] for row in state.new_login_days] == ["2025-03-08", "2025-03-09"]


def test_segments_follow_the_aggregates_and_the_clock() -> None:
    player = Aggregates(PLAYER, registered_at="2025-03-01T00:00:00Z")
    assert segments_of(CONFIG, player, datetime(2025, 3, 5, tzinfo=UTC)) == ("new",)
    assert segments_of(CONFIG, player, NOW) == ()
    assert segments_of(CONFIG, player, datetime(2025, 4, 5, tzinfo=UTC)) == ("dormant",)
    rich = Aggregates(PLAYER, deposits=ZERO + 1000, last_login_at="2025-03-10T00:00:00Z")
    assert segments_of(CONFIG, rich, NOW) == ("vip",)


def test_entering_a_segment_notifies_once() -> None:
    state = batch()
    RULES.apply(state, event("money", money("DEPOSIT", 1000)), NOW, STAMP)
    RULES.apply(state, event("money", money("DEPOSIT", 1), seq=2), NOW, STAMP)
    entered = [values for values, _ in state.notifications if values["kind"] == "segmentEntered"]
    assert [json.loads(values["data"]) for values in entered] == [{"segment": "vip"}]
    assert state.players[PLAYER].aggregates.segments == ("vip",)


def test_a_standing_never_goes_back() -> None:
    # A level reached under an earlier configuration is kept (D91).
    state = batch(Standing(0, 5, "Gold"))
    RULES.apply(state, event("login", {}), NOW, STAMP)
    assert state.players[PLAYER].standing == Standing(0, 5, "Gold")
