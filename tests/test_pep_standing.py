"""Issue 13 item 6 over real HTTP: one rank model (engine.yaml) and one standing per player. A
seeded high-level player's deposit raises its XP from the seeded value, never resets it; its
level and rank never drop; `/me`, the leaderboard's `me` and the pushes agree (D89-D91)."""

from __future__ import annotations

import queue
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
import socketio
from flask import Flask

from pepharness.fixtures import Player
from pepharness.mocks import pep as pep_mock
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.clock import Clock
from pepharness.mocks.operator import backend_of as operator_backend_of
from pepharness.mocks.pep.engine import EngineConfig, ReactiveEngine
from pepharness.mocks.pep.events import EventLog, NewEvent
from pepharness.mocks.pep.store import Store, database_url

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import MockClient

AUTH = "/api/auth/v1/player"
ME = "/api/players/v1/me"
BOARD = "/api/leaderboards/v1/xp"
WAIT_SECONDS = 10.0
RANK_EVENTS = ("ranks:on:xpUp", "ranks:on:levelUp")


def _login(pep: MockClient, player: Player) -> dict[str, str]:
    answer = pep.post(
        AUTH, json={"identityToken": player.identity_token, "clientId": pep_mock.DEMO_CLIENT_ID}
    )
    assert answer.status_code == 200, answer.text
    return {"x-authorization": answer.json()["accessToken"]}


def _standings(pep: MockClient, headers: dict[str, str]) -> tuple[Any, Any]:
    """(`/me`'s ranksData, the leaderboard's `me`) as (xp, level, rank) each."""
    ranks = pep.get(ME, headers=headers).json()["ranksData"]
    me = pep.get(BOARD, headers=headers).json()["me"]
    return (
        (ranks["xpBalance"], ranks["level"]["levelNumber"], ranks["rank"]["name"]),
        (me["xpBalance"], me["level"]["levelNumber"], me["rank"]["name"]),
    )


def _seeded(pep_app: Flask, operator_app: Flask) -> list[tuple[int, Player]]:
    """The seeded players with their seeded XP, highest first."""
    players = pep_mock.backend_of(pep_app).players
    seeded = operator_backend_of(operator_app).data.players
    return sorted(((players.seeded_xp(p.player_id), p) for p in seeded), key=lambda x: -x[0])


def test_seeded_standings_follow_the_engines_rank_model(
    pep: MockClient, pep_app: Flask, operator_app: Flask
) -> None:
    config = pep_mock.backend_of(pep_app).players.config
    ranked = _seeded(pep_app, operator_app)
    assert ranked[0][0] >= config.levels[-1], "some seeded player is at the top level"
    for xp, player in [*ranked[:2], *ranked[-2:]]:
        mine, board = _standings(pep, _login(pep, player))
        level = config.level_for(xp)
        assert mine == board == (xp, level, config.rank_for(level)), player.player_id


def test_a_deposit_raises_a_high_level_players_standing(
    pep: MockClient, pep_app: Flask, operator_app: Flask, pep_server: ThreadedServer
) -> None:
    from conftest import MockClient

    xp, player = _seeded(pep_app, operator_app)[1]  # a high level, not at the top one
    as_player = _login(pep, player)
    before, board = _standings(pep, as_player)
    assert before == board and before[0] == xp and before[1] > 1

    pushed: queue.Queue[tuple[str, Any]] = queue.Queue()
    session = requests.Session()
    session.trust_env = False
    browser = socketio.Client(reconnection=False, http_session=session, handle_sigint=False)
    for name in RANK_EVENTS:
        browser.on(name, lambda data, name=name: pushed.put((name, data)))
    browser.connect(pep_server.url, auth={"token": as_player["x-authorization"]},
                    transports=["polling"], wait_timeout=WAIT_SECONDS)
    platform = MockClient(pep_server.url, "pep-platform")
    try:
        grant = platform.post("/api/oauth/v1/token", data={"grant_type": "client_credentials"},
                              auth=(pep_mock.DEMO_CLIENT_ID, pep_mock.DEMO_CLIENT_SECRET))
        deposit = {
            "playerId": player.player_id, "amount": 60, "exchangeRate": 1,
            "date": datetime.now(UTC).isoformat(), "currency": "EUR",
            "transactionStatus": "APPROVED", "transactionType": "DEPOSIT",
            "transactionId": "standing-dep-1", "realMoneyBalance": 60, "bonusMoneyBalance": 0,
        }
        answer = platform.post(
            "/rx-api/transactions/v1/money-transaction", json=deposit,
            headers={"Authorization": f"Bearer {grant.json()['access_token']}"},
        )
        assert answer.status_code == 202, answer.text
        # "first deposit" (100 XP) completes: the push arrives after the engine committed.
        name, data = pushed.get(timeout=WAIT_SECONDS)
        after, board = _standings(pep, as_player)
    finally:
        browser.disconnect()
        platform.session.close()
    assert (name, data) == ("ranks:on:xpUp", {"xpBalance": xp + 100})
    assert after == board
    assert after[0] == xp + 100 and after[1] >= before[1]
    config = pep_mock.backend_of(pep_app).players.config
    assert after[1:] == (config.level_for(xp + 100), config.rank_for(after[1]))
    rises = [pushed.get_nowait() for _ in range(pushed.qsize())]
    assert all(data["level"]["levelNumber"] > before[1] for _, data in rises), rises
    assert pep.get(BOARD, headers=as_player).json()["me"]["position"] == 1


def test_a_standing_never_goes_back_when_the_levels_change(tmp_path: Path) -> None:
    """A standing stored under an earlier configuration keeps its level when a new one would
    put its XP lower: an event only ever adds."""
    store = Store(database_url(tmp_path / "pep.sqlite3"))
    clock = Clock(lambda: datetime(2026, 1, 5, tzinfo=UTC))
    published: list[tuple[str, str, dict[str, Any]]] = []
    try:
        default = EngineConfig.load()
        first = ReactiveEngine(store.engine, clock=clock, config=default,
                               starting_xp=lambda player: 1000)
        log = EventLog(store.engine)
        now = clock.now()
        log.append([NewEvent("tags:1", "tags", "p1", now, {"tags": ["a"]})],
                   client_id="c", received_at=now)
        first.apply_pending()
        assert first.player_state("p1") is not None
        stored = first.player_state("p1") or {}
        assert (stored["xpBalance"], stored["level"]) == (1000, 5)
        steeper = EngineConfig.from_mapping({
            "segments": {}, "missions": [], "levels": [0, 5000],
            "ranks": [{"name": "Bronze", "fromLevel": 1}],
        })
        later = ReactiveEngine(store.engine, clock=clock, config=steeper,
                               publish=lambda *pushed: published.append(pushed))
        log.append([NewEvent("tags:2", "tags", "p1", now, {"tags": ["b"]})],
                   client_id="c", received_at=now)
        later.apply_pending()
        state = later.player_state("p1") or {}
        assert (state["xpBalance"], state["level"]) == (1000, 5)
        assert [event for _, event, _ in published if event.startswith("ranks:")] == []
    finally:
        store.close()
