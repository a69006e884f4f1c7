"""The issue's scenario, end to end over real HTTP and a real Socket.IO client: a player is
registered, logs in through the operator mock, the operator's platform sends deposits and bets
through the Platform gateway, and the player watches a mission complete, XP rise and a level-up
arrive — on the reference PEP as `pepharness serve pep` builds it."""

from __future__ import annotations

import queue
import time
from typing import TYPE_CHECKING, Any

import socketio

from pepharness.mocks.core import ThreadedServer

if TYPE_CHECKING:
    from conftest import MockClient

CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"
WAIT_SECONDS = 10.0


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")


def test_deposits_and_bets_complete_missions_and_push_a_level_up(
    pep: MockClient, operator: MockClient, pep_server: ThreadedServer
) -> None:
    from conftest import MockClient

    platform = MockClient(pep_server.url, "pep-platform")
    grant = platform.post("/api/oauth/v1/token", data={"grant_type": "client_credentials"},
                          auth=(CLIENT, SECRET))
    events = {"Authorization": f"Bearer {grant.json()['access_token']}"}

    # The operator registers the player and the player logs in at the casino.
    player_id = "e2e-player-1"
    operator.admin("POST", "/tokens", json={"identityToken": "e2e-identity-1",
                                            "playerId": player_id, "status": 200})
    registered = platform.post("/rx-api/players-data/v1/registration", headers=events, json={
        "playerId": player_id, "registrationDevice": "web", "date": "2026-11-20T09:00:00Z"})
    assert registered.status_code == 202
    login = pep.post("/api/auth/v1/player",
                     json={"identityToken": "e2e-identity-1", "clientId": CLIENT})
    assert login.status_code == 200, login.text
    player_token = login.json()["accessToken"]
    as_player = {"x-authorization": player_token}
    assert pep.get("/api/players/v1/me", headers=as_player).json()["ranksData"]["xpBalance"] == 0

    # The player's browser listens (long-polling; WebSocket in tests/test_pep_realtime_js.py).
    pushed: queue.Queue[tuple[str, Any]] = queue.Queue()
    browser = socketio.Client(reconnection=False)
    for name in ("ranks:on:xpUp", "ranks:on:levelUp", "missions:on:progress",
                 "notifications:on:new"):
        browser.on(name, lambda data, name=name: pushed.put((name, data)))
    browser.connect(pep_server.url, auth={"token": player_token}, transports=["polling"],
                    wait_timeout=WAIT_SECONDS)
    try:
        deposit = {
            "playerId": player_id, "amount": 60, "exchangeRate": 1.0,
            "date": "2026-11-20T10:00:00Z", "currency": "EUR", "transactionStatus": "APPROVED",
            "transactionType": "DEPOSIT", "transactionId": "e2e-dep-1", "realMoneyBalance": 60,
            "bonusMoneyBalance": 0,
        }
        answer = platform.post("/rx-api/transactions/v1/money-transaction", json=deposit,
                               headers=events)
        assert answer.status_code == 202
        # The deposit completes "first deposit" (100 XP): level 2.
        _until(lambda: pep.get("/api/players/v1/me", headers=as_player).json()["ranksData"][
            "xpBalance"] == 100, "100 XP after the first deposit")
        for number in range(5):
            bet = {
                "playerId": player_id, "realMoneyAmount": 40, "bonusMoneyAmount": 5,
                "exchangeRate": 1, "date": f"2026-11-20T10:1{number}:00Z", "currency": "EUR",
                "transactionStatus": "APPROVED", "transactionType": "BET",
                "transactionId": f"e2e-bet-{number}", "gameCategoryId": 1,
                "gameCategoryName": "Slots", "gameProviderId": "7", "gameProviderName": "Prov",
                "gameId": "80001", "gameName": "Omega 1", "gameSessionId": "e2e-session",
                "realMoneyBalance": 60 - 8 * number, "bonusMoneyBalance": 0,
            }
            round_ = {"gameTransactionRound": [bet]}
            assert platform.post("/rx-api/transactions/v1/game-transaction-round",
                                 json=round_, headers=events).status_code == 202
        # 225 EUR wagered on slots completes "slots wager" (150 XP): 250 XP, level 3, Silver.
        me = _until(lambda: (doc := pep.get("/api/players/v1/me", headers=as_player).json())[
            "ranksData"]["xpBalance"] == 250 and doc, "250 XP after the slots wagers")
        assert me["ranksData"]["level"]["levelNumber"] == 3
        assert me["ranksData"]["rank"]["name"] == "Silver"

        received: list[tuple[str, Any]] = []
        _until(lambda: _drain(pushed, received) and any(
            name == "ranks:on:levelUp" and data["level"]["levelNumber"] == 3
            for name, data in received), "the level-3 push")
        xp = [data["xpBalance"] for name, data in received if name == "ranks:on:xpUp"]
        assert xp == [100, 250]
        levels = [data["level"]["levelNumber"] for name, data in received
                  if name == "ranks:on:levelUp"]
        assert levels == [2, 3]
        assert any(name == "notifications:on:new" for name, _ in received)

        missions = pep.get("/api/missions/v1/missions", headers=as_player).json()["missions"]
        done = {m["_id"] for m in missions if m["status"] == "COMPLETED"}
        assert {"first-deposit", "slots-wager"} <= done
        notifications = pep.get("/api/notifications/v1/notifications",
                                headers=as_player).json()["notifications"]
        assert {n["type"] for n in notifications} >= {"missionCompleted", "levelUp"}
        board = pep.get("/api/leaderboards/v1/xp", headers=as_player).json()
        assert board["me"]["playerId"] == player_id and board["me"]["xpBalance"] == 250

        # The same deposit again (a client's retry) changes nothing.
        again = platform.post("/rx-api/transactions/v1/money-transaction", json=deposit,
                              headers=events)
        assert again.json()["duplicate"] is True
        time.sleep(0.3)
        assert pep.get("/api/players/v1/me", headers=as_player).json()["ranksData"][
            "xpBalance"] == 250
    finally:
        browser.disconnect()


def _drain(pushed: queue.Queue[tuple[str, Any]], into: list[tuple[str, Any]]) -> bool:
    while not pushed.empty():
        into.append(pushed.get_nowait())
    return True
