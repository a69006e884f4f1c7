"""The reference PEP's Socket.IO server and engine reads over real HTTP: a real Socket.IO
client on long-polling (the WebSocket transport has tests/test_pep_realtime_js.py),
authenticated with a Frontend JWT."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import requests
import socketio
from flask import Flask

from pepharness.fixtures import Player
from pepharness.mocks import pep as pep_mock
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.operator import backend_of as operator_backend_of
from pepharness.mocks.pep.engine import ENGINE_EXTENSION, EngineConfig, ReactiveEngine
from pepharness.mocks.pep.events import EventLog, NewEvent
from pepharness.mocks.pep.reads import engine_of, reads
from pepharness.mocks.pep.realtime import (
    Realtime,
    frontend_verifier,
    install_realtime,
    realtime_of,
)

if TYPE_CHECKING:
    from conftest import MockClient

AUTH = "/api/auth/v1/player"
WAIT = 5.0


@pytest.fixture(scope="module")
def pep_app(
    operator_app: Flask, operator_server: ThreadedServer, pep_database: str
) -> Iterator[Flask]:
    """The module's PEP (conftest's configuration) with Socket.IO, the engine and its reads
    installed here unless app.py does it already."""
    config = {
        "SEED": 42,
        "ANCHOR": operator_backend_of(operator_app).data.anchor,
        "OPERATOR_URL": operator_server.url,
        "DATABASE": pep_database,
    }
    app = pep_mock.create_app(config)
    backend = pep_mock.backend_of(app)
    realtime = realtime_of(app) or install_realtime(app, frontend_verifier(backend))
    started = None
    if ENGINE_EXTENSION not in app.extensions:
        started = ReactiveEngine(
            backend.store.engine,
            clock=backend.clock,
            config=EngineConfig.load(),
            publish=realtime.publish,
        )
        started.start()
        app.extensions[ENGINE_EXTENSION] = started
    if "reads" not in app.blueprints:
        app.register_blueprint(reads)
    yield app
    if started is not None:
        started.stop()


@pytest.fixture
def realtime(pep_app: Flask, pep: MockClient) -> Realtime:
    engine_of(pep_app).reset()
    found = realtime_of(pep_app)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def players(operator_app: Flask) -> tuple[Player, ...]:
    return operator_backend_of(operator_app).data.players


def token_of(pep: MockClient, player: Player) -> str:
    response = pep.post(AUTH, json={"identityToken": player.identity_token, "clientId": "x"})
    assert response.status_code == 401  # an unknown client: the right one is needed
    response = pep.post(
        AUTH, json={"identityToken": player.identity_token, "clientId": pep_mock.DEMO_CLIENT_ID}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


class Listener:
    """A real Socket.IO client on long-polling that queues every event it receives."""

    def __init__(self) -> None:
        session = requests.Session()
        session.trust_env = False  # never a proxy for loopback
        self.client = socketio.Client(reconnection=False, http_session=session, handle_sigint=False)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.refusals: list[Any] = []
        self.client.on("*", lambda event, data: self.events.put((event, data)))
        self.client.on("connect_error", self.refusals.append)

    def connect(self, url: str, **kwargs: Any) -> None:
        self.client.connect(url, transports=["polling"], wait_timeout=WAIT, **kwargs)

    def next(self) -> tuple[str, Any]:
        return self.events.get(timeout=WAIT)

    def until(self, event: str) -> list[tuple[str, Any]]:
        """Every event received up to and including the first `event`."""
        seen: list[tuple[str, Any]] = []
        while not seen or seen[-1][0] != event:
            seen.append(self.next())
        return seen


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.client.disconnect()


def listen(listeners: list[Listener], url: str, **kwargs: Any) -> Listener:
    listener = Listener()
    listeners.append(listener)
    listener.connect(url, **kwargs)
    return listener


def test_a_player_receives_its_own_events_only(
    pep: MockClient,
    realtime: Realtime,
    players: tuple[Player, ...],
    listeners: list[Listener],
) -> None:
    alice, bob = players[0], players[1]
    mine = listen(listeners, pep.base_url, auth={"token": token_of(pep, alice)})
    theirs = listen(listeners, pep.base_url, headers={"x-authorization": token_of(pep, bob)})
    assert mine.client.transport() == "polling"

    realtime.publish(bob.player_id, "ranks:on:xpUp", {"xpBalance": 7})
    realtime.publish(alice.player_id, "ranks:on:xpUp", {"xpBalance": 100})
    realtime.publish("someone-else", "ranks:on:levelUp", {"level": {"levelNumber": 9}})
    realtime.publish(alice.player_id, "ranks:on:levelUp", {"level": {"levelNumber": 2}})

    # Each connection's events arrive in the order emitted: another player's would show here.
    assert mine.next() == ("ranks:on:xpUp", {"xpBalance": 100})
    assert mine.next() == ("ranks:on:levelUp", {"level": {"levelNumber": 2}})
    assert theirs.next() == ("ranks:on:xpUp", {"xpBalance": 7})
    time.sleep(0.2)
    assert mine.events.empty() and theirs.events.empty()


@pytest.mark.parametrize(
    "credential",
    ["none", "blank", "forged", "platform-audience", "ended-session", "surrogate", "nul"],
)
def test_a_connection_without_a_valid_frontend_jwt_is_refused(
    pep: MockClient,
    realtime: Realtime,
    players: tuple[Player, ...],
    listeners: list[Listener],
    credential: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = token_of(pep, players[0])
    claims = jwt.decode(token, options={"verify_signature": False})
    kwargs: dict[str, Any] = {}
    if credential == "forged":
        kwargs["auth"] = {"token": jwt.encode(claims, b"x" * 32, algorithm="HS256")}
    elif credential == "blank":
        kwargs["auth"] = {"token": " "}
    elif credential == "platform-audience":
        key = pep_mock.backend_of(realtime.app).tokens.secret
        kwargs["auth"] = {"token": jwt.encode({**claims, "aud": "pep-platform"}, key, "HS256")}
    elif credential in ("surrogate", "nul"):
        kwargs["auth"] = {"token": token[:10] + ("\ud800" if credential == "surrogate" else "\x00")}
    elif credential == "ended-session":
        ended = pep.delete("/api/auth/v1/session", headers={"x-authorization": token})
        assert ended.status_code == 204
        kwargs["headers"] = {"x-authorization": token}
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        listener.connect(pep.base_url, **kwargs)
    assert not listener.client.connected
    assert listener.refusals == [{"message": "unauthorized"}]
    # Refused as any bad token is: no traceback logged for it (issue 13 item 3).
    assert "Traceback" not in caplog.text


def test_engine_events_reach_the_player_and_its_reads(
    pep: MockClient,
    pep_app: Flask,
    realtime: Realtime,
    players: tuple[Player, ...],
    listeners: list[Listener],
) -> None:
    # A seeded player in level 1: its seeded XP is the engine's start (D90), and the deposit's
    # 100 XP takes it to level 2.
    seeded = pep_mock.backend_of(pep_app).players
    player = next(p for p in players[2:] if seeded.seeded_xp(p.player_id) < 100)
    start = seeded.seeded_xp(player.player_id)
    token = token_of(pep, player)
    listener = listen(listeners, pep.base_url, auth={"token": token})
    engine = engine_of(pep_app)
    now = datetime.now(UTC)
    deposit = {
        "playerId": player.player_id,
        "amount": 80,
        "exchangeRate": 1,
        "date": now.isoformat(),
        "currency": "EUR",
        "transactionStatus": "APPROVED",
        "transactionType": "DEPOSIT",
        "transactionId": "rt-1",
        "realMoneyBalance": 80,
        "bonusMoneyBalance": 0,
    }
    event = NewEvent("money:rt-1", "money", player.player_id, now, deposit)
    EventLog(engine.db).append([event], client_id=pep_mock.DEMO_CLIENT_ID, received_at=now)
    engine.wake()

    seen = listener.until("ranks:on:levelUp")
    names = [name for name, _ in seen]
    assert names == [
        "missions:on:progress",
        "notifications:on:new",
        "ranks:on:xpUp",
        "ranks:on:levelUp",
    ]
    assert seen[0][1]["_id"] == "first-deposit" and seen[0][1]["status"] == "COMPLETED"
    assert seen[2][1] == {"xpBalance": start + 100}
    assert seen[3][1] == {"level": {"levelNumber": 2}}
    assert listener.next()[0] == "notifications:on:new"  # the level up's

    me = {"x-authorization": token}
    missions = pep.get("/api/missions/v1/missions", headers=me)
    assert missions.status_code == 200
    first = missions.json()["missions"][0]
    assert first == seen[0][1]
    assert first["missionBundleState"] == "ACTIVE"
    board = pep.get("/api/leaderboards/v1/xp", headers=me).json()
    assert board["limit"] == 25 and board["me"]["position"] == 1
    assert board["items"][0]["playerId"] == player.player_id
    notes = pep.get("/api/notifications/v1/notifications", headers=me).json()["notifications"]
    assert [note["type"] for note in notes] == ["levelUp", "missionCompleted"]
    assert notes[1] == seen[1][1]

    stranger = {"x-authorization": token_of(pep, players[3])}
    assert len(pep.get("/api/missions/v1/missions", headers=stranger).json()["missions"]) == 3
    assert pep.get("/api/leaderboards/v1/xp", headers=stranger).json()["me"]["position"] is None


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1", "1e2", ""])
def test_a_leaderboard_limit_outside_1_to_100_is_400(
    pep: MockClient, realtime: Realtime, players: tuple[Player, ...], limit: str
) -> None:
    me = {"x-authorization": token_of(pep, players[0])}
    response = pep.get(f"/api/leaderboards/v1/xp?limit={limit}", headers=me)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert pep.get("/api/leaderboards/v1/xp?limit=100", headers=me).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/missions/v1/missions",
        "/api/leaderboards/v1/xp",
        "/api/notifications/v1/notifications",
    ],
)
def test_the_reads_need_the_players_token(pep: MockClient, realtime: Realtime, path: str) -> None:
    missing = pep.get(path)
    assert missing.status_code == 401 and missing.json()["error"] == "missing_token"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="pep-frontend"'
    forged = pep.get(path, headers={"x-authorization": "not-a-jwt"})
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"
