"""The reference PEP's Socket.IO over both transports (D86): the official JavaScript client
(npm `socket.io-client`, run by Node from tests/js, installed with `npm ci --prefix tests/js`)
with its default options (polling, then the upgrade to WebSocket) and with `transports:
['websocket']`, and python-socketio's client on WebSocket only; each receives the documented
pushes of a Platform deposit. Plus every kind of upgrade attempt the server cannot serve is a
400, never a 5xx."""

from __future__ import annotations

import base64
import json
import queue
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import socketio
from flask import Flask

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.pep.realtime import install_realtime

if TYPE_CHECKING:
    from conftest import MockClient

JS = Path(__file__).parent / "js"
NODE = shutil.which("node")
CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"
WAIT = 15.0
DOCUMENTED = ("ranks:on:xpUp", "ranks:on:levelUp")


def _platform_headers(pep_server: ThreadedServer) -> tuple[Any, dict[str, str]]:
    from conftest import MockClient

    platform = MockClient(pep_server.url, "pep-platform")
    grant = platform.post("/api/oauth/v1/token", data={"grant_type": "client_credentials"},
                          auth=(CLIENT, SECRET))
    assert grant.status_code == 200, grant.text
    return platform, {"Authorization": f"Bearer {grant.json()['access_token']}"}


def _new_player(pep: MockClient, operator: MockClient, pep_server: ThreadedServer,
                name: str) -> tuple[str, str]:
    """A player registered through the Platform gateway and logged in: (player id, JWT)."""
    platform, events = _platform_headers(pep_server)
    player_id, identity = f"{name}-player", f"{name}-identity"
    operator.admin("POST", "/tokens", json={"identityToken": identity, "playerId": player_id,
                                            "status": 200})
    registered = platform.post("/rx-api/players-data/v1/registration", headers=events, json={
        "playerId": player_id, "registrationDevice": "web", "date": "2026-11-20T09:00:00Z"})
    assert registered.status_code == 202, registered.text
    login = pep.post("/api/auth/v1/player", json={"identityToken": identity, "clientId": CLIENT})
    assert login.status_code == 200, login.text
    return player_id, str(login.json()["accessToken"])


def _deposit(pep_server: ThreadedServer, player_id: str) -> None:
    """A first deposit: the engine completes a mission, the player's XP and level rise."""
    platform, events = _platform_headers(pep_server)
    answer = platform.post("/rx-api/transactions/v1/money-transaction", headers=events, json={
        "playerId": player_id, "amount": 60, "exchangeRate": 1.0,
        "date": "2026-11-20T10:00:00Z", "currency": "EUR", "transactionStatus": "APPROVED",
        "transactionType": "DEPOSIT", "transactionId": f"{player_id}-dep-1",
        "realMoneyBalance": 60, "bonusMoneyBalance": 0})
    assert answer.status_code == 202, answer.text


def _standing(pep: MockClient, token: str) -> tuple[int, int]:
    ranks = pep.get("/api/players/v1/me", headers={"x-authorization": token}).json()["ranksData"]
    return int(ranks["xpBalance"]), int(ranks["level"]["levelNumber"])


class NodeListener:
    """tests/js/listen.mjs in a Node process; its JSON lines queued as they come."""

    def __init__(self, url: str, token: str) -> None:
        assert NODE is not None
        if not (JS / "node_modules" / "socket.io-client").is_dir():
            pytest.fail("socket.io-client is not installed: run `npm ci --prefix tests/js`")
        self.process = subprocess.Popen(
            [NODE, str(JS / "listen.mjs"), url, token], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def until(self, done: Any, what: str) -> list[dict[str, Any]]:
        """Every line up to the one after which `done(lines)` holds; a line reporting a
        failure, or the end of the process, fails the test with what the client said."""
        seen: list[dict[str, Any]] = []
        while not done(seen):
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail(f"the JS client: not within {WAIT} s: {what}; it said {seen}")
            if line is None or line["type"] not in ("ready", "event"):
                pytest.fail(f"the JS client failed waiting for {what}: {line} "
                            f"(stderr: {self.stderr()}); before: {seen}")
            seen.append(line)
        return seen

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.mark.skipif(NODE is None, reason="node is not installed (CI installs Node 20)")
def test_the_official_js_client_receives_the_pushes_over_both_transports(
    pep: MockClient, operator: MockClient, pep_server: ThreadedServer
) -> None:
    player_id, token = _new_player(pep, operator, pep_server, "js")
    listener = NodeListener(pep_server.url, token)
    try:
        ready = listener.until(
            lambda seen: {line["client"] for line in seen if line["type"] == "ready"}
            == {"default", "websocket"}, "both clients connected")
        # The default client upgraded from polling: the handshake's upgrade is served.
        assert {(line["client"], line["transport"]) for line in ready
                if line["type"] == "ready"} == {("default", "websocket"),
                                                 ("websocket", "websocket")}

        _deposit(pep_server, player_id)

        def all_arrived(seen: list[dict[str, Any]]) -> bool:
            got = {(line["client"], line["event"]) for line in seen if line["type"] == "event"}
            return all((client, event) in got for client in ("default", "websocket")
                       for event in DOCUMENTED)

        events = listener.until(all_arrived, "ranks:on:xpUp and ranks:on:levelUp on both")
        # The engine pushes after it commits: /me now shows what the last pushes carry.
        xp, level = _standing(pep, token)

        def last(lines: list[dict[str, Any]], client: str, event: str) -> Any:
            return [line["data"] for line in lines if line["type"] == "event"
                    and line["client"] == client and line["event"] == event][-1]

        def agree(seen: list[dict[str, Any]]) -> bool:
            lines = events + seen
            return all(last(lines, client, "ranks:on:xpUp")["xpBalance"] == xp
                       and last(lines, client, "ranks:on:levelUp")["level"]["levelNumber"]
                       == level for client in ("default", "websocket"))

        events += listener.until(agree, f"pushes agreeing with /me: {xp} XP, level {level}")
    finally:
        code = listener.close()
    assert code == 0, listener.stderr()
    for client in ("default", "websocket"):
        names = [line["event"] for line in events
                 if line["type"] == "event" and line["client"] == client]
        # The documented order: the level-up after the xpUp that caused it.
        assert names.index("ranks:on:xpUp") < names.index("ranks:on:levelUp"), names


def test_python_socketio_connects_on_websocket_only(
    pep: MockClient, operator: MockClient, pep_server: ThreadedServer
) -> None:
    player_id, token = _new_player(pep, operator, pep_server, "py-ws")
    pushed: queue.Queue[tuple[str, Any]] = queue.Queue()
    session = requests.Session()
    session.trust_env = False
    client = socketio.Client(reconnection=False, http_session=session, handle_sigint=False)
    client.on("*", lambda event, data: pushed.put((event, data)))
    client.connect(pep_server.url, auth={"token": token}, transports=["websocket"],
                   wait_timeout=WAIT)
    try:
        assert client.transport() == "websocket"
        _deposit(pep_server, player_id)
        names: list[str] = []
        while "ranks:on:xpUp" not in names:
            names.append(pushed.get(timeout=WAIT)[0])
    finally:
        client.disconnect()


def _key() -> str:
    return base64.b64encode(b"0123456789abcdef").decode()


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}


@pytest.mark.parametrize(
    ("query", "headers", "message"),
    [
        ("EIO=4&transport=websocket", {**UPGRADE, "Sec-WebSocket-Key": "short"},
         "Sec-WebSocket-Key must be 16 bytes in base64"),
        ("EIO=4&transport=websocket", UPGRADE, "Sec-WebSocket-Key must be 16 bytes in base64"),
        ("EIO=4&transport=websocket",
         {**UPGRADE, "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": _key()},
         "Sec-WebSocket-Version must be 13"),
        ("EIO=4&transport=websocket&sid=unknown", {**UPGRADE, "Sec-WebSocket-Key": _key()},
         "Invalid session unknown"),
        ("EIO=3&transport=websocket", {**UPGRADE, "Sec-WebSocket-Key": _key()}, None),
        # Refused by the WebSocket library itself, before it sent anything.
        ("EIO=4&transport=websocket",
         {**UPGRADE, "Sec-WebSocket-Key": _key(),
          "Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=zz"},
         "invalid WebSocket handshake"),
    ],
    ids=["bad-key", "no-key", "old-version", "unknown-session", "engine-io-3", "bad-extension"],
)
def test_an_upgrade_that_cannot_be_served_is_a_400(
    pep_server: ThreadedServer, query: str, headers: dict[str, str], message: str | None
) -> None:
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(f"{pep_server.url}/socket.io/?{query}", headers=headers,
                             timeout=WAIT)
    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    if message is not None:
        assert answer.json() == message


def test_an_upgrade_request_answered_over_http_keeps_its_connection(
    pep_server: ThreadedServer,
) -> None:
    """The server offers every upgrade request its connection; an app that answers over HTTP
    instead leaves it to waitress, keep-alive included. (Flask refuses a WebSocket request to
    a plain route with its own 400, Werkzeug's `WebsocketMismatch`.)"""
    host, port = pep_server.url.removeprefix("http://").rsplit(":", 1)
    upgrade = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: " + _key().encode() + b"\r\n")
    with socket.create_connection((host, int(port)), timeout=WAIT) as raw:
        reader = raw.makefile("rb")
        for headers, expected in ((upgrade, b"HTTP/1.1 400"), (b"", b"HTTP/1.1 200")):
            raw.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            status = reader.readline()
            assert status.startswith(expected), status
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert json.loads(reader.read(length))


def test_websockets_hold_no_worker_thread_and_end_with_the_server() -> None:
    """An upgraded connection runs on a thread of its own: on a one-thread server, WebSockets
    connect and HTTP is still answered; stopping the server ends them."""
    app = Flask("websocket-threads")
    app.add_url_rule("/ping", "ping", lambda: "pong")
    install_realtime(app, lambda token: "p1" if token == "t" else None)
    ended = [threading.Event(), threading.Event()]
    clients = [socketio.Client(reconnection=False, handle_sigint=False) for _ in ended]
    for client, event in zip(clients, ended, strict=True):
        client.on("disconnect", lambda *_, event=event: event.set())
    with ThreadedServer(app, threads=1) as server, requests.Session() as http:
        http.trust_env = False
        for client in clients:
            client.connect(server.url, auth={"token": "t"}, transports=["websocket"],
                           wait_timeout=WAIT)
            assert client.transport() == "websocket"
        assert http.get(f"{server.url}/ping", timeout=WAIT).text == "pong"
    assert all(event.wait(WAIT) for event in ended)
    for client in clients:
        client.disconnect()
