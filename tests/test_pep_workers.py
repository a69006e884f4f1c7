"""`pepharness serve pep --workers 2`: two real processes, one PEP (D207-D212).

One server for the module (the operator mock in this process checks the identity tokens);
the requests go over many connections opened at once, which the two workers share, and the
tests assert what one process would have answered: every event applied once, one clock, one
fault count, and every push reaching its player's connection whatever worker applied the event
or holds the connection, on long-polling (a new connection for every request, so the session's
requests land on both workers) and on WebSocket.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import engineio.payload
import pytest
import requests
import socketio
from test_pep_platform_http import bet
from test_workers import CONNECTIONS, TIMEOUT, Pool, _serve, _sockets, _workers

from pepharness.fixtures import generate
from pepharness.mocks import pep as pep_mock
from pepharness.mocks.core import ThreadedServer

TOKEN = "/api/oauth/v1/token"
ROUND = "/rx-api/transactions/v1/game-transaction-round"
PLAYERS = 8
EVENTS = 160
PUSHES = 24

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def served(operator_server: ThreadedServer) -> Iterator[tuple[subprocess.Popen[str], str]]:
    yield from _serve("pep", "--operator-url", operator_server.url)


@pytest.fixture
def pool(served: tuple[subprocess.Popen[str], str]) -> Iterator[Pool]:
    opened = Pool(served[1])
    assert opened.one(0, "POST", "/__admin/reset", {})[0] == 200
    try:
        yield opened
    finally:
        opened.close()


def _platform_headers(url: str) -> dict[str, str]:
    answer = requests.post(
        url + TOKEN, data={"grant_type": "client_credentials"},
        auth=(pep_mock.DEMO_CLIENT_ID, pep_mock.DEMO_CLIENT_SECRET), timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _post_all(
    pool: Pool, path: str, bodies: list[Any], headers: dict[str, str]
) -> list[tuple[int, Any]]:
    """Every body POSTed, over all the pool's connections at once (one thread each)."""

    def send(index: int) -> list[tuple[int, Any]]:
        return [
            pool.one(i, "POST", path, bodies[i], headers)
            for i in range(index, len(bodies), CONNECTIONS)
        ]

    return [a for batch in pool.executor.map(send, range(CONNECTIONS)) for a in batch]


def _settled(pool: Pool) -> None:
    """Until neither worker's engine has anything pending (each answer is a round trip)."""
    for _ in range(10_000):
        if pool.one(0, "GET", "/__admin/engine")[1]["pending"] == 0:
            return
    raise AssertionError("the engines did not apply every event")


def test_events_sent_to_both_workers_are_each_applied_once(
    served: tuple[subprocess.Popen[str], str], pool: Pool
) -> None:
    workers = _workers(served[0].pid)
    before = {pid: _sockets(pid) for pid in workers}
    headers = _platform_headers(served[1])
    rounds = [
        {"gameTransactionRound": [bet(f"w{n}", playerId=f"pw-{n % PLAYERS}",
                                      realMoneyAmount=1 + n % 7, exchangeRate=1.25)]}
        for n in range(EVENTS)
    ]
    # Each event once, and every fourth a second time on another connection.
    sends = rounds + rounds[::4]

    sending = Pool(served[1])  # opened now: its connections show on both workers
    try:
        answers = _post_all(sending, ROUND, sends, headers)
        after = {pid: _sockets(pid) for pid in workers}
    finally:
        sending.close()
    assert len(workers) == 2 and all(after[pid] > before[pid] for pid in workers), (before, after)
    assert {status for status, _ in answers} == {202}
    assert sum(body["duplicates"] for _, body in answers) == len(rounds[::4])
    _settled(pool)
    for player in range(PLAYERS):
        bets = sum(
            Decimal(1 + n % 7) * Decimal("1.25") for n in range(player, EVENTS, PLAYERS)
        )
        status, state = pool.one(player, "GET", f"/__admin/engine/players/pw-{player}")
        assert status == 200 and Decimal(str(state["bets"])) == bets, state


def test_players_registered_on_both_workers_are_each_one_change(
    served: tuple[subprocess.Popen[str], str], pool: Pool
) -> None:
    headers = _platform_headers(served[1])
    bodies = [
        {"playerId": f"reg-{n}", "registrationDevice": "web", "date": "2026-11-20T09:00:00Z"}
        for n in range(2 * CONNECTIONS)
    ]
    answers = _post_all(pool, "/rx-api/players-data/v1/registration", bodies, headers)
    assert {status for status, _ in answers} == {202}, answers
    # Each registration took the next change: the players' listing pages through all of them.
    seen: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        path = "/api/data-fetch/v1/players?limit=7" + (f"&next={quote(cursor)}" if cursor else "")
        status, page = pool.one(0, "GET", path, headers=headers)
        assert status == 200, page
        seen += [player["playerId"] for player in page["items"]]
        cursor = page["next"]
    assert sorted(seen) == sorted(body["playerId"] for body in bodies)


def test_the_data_fetch_limit_admits_exactly_its_requests_over_both_workers(
    served: tuple[subprocess.Popen[str], str], pool: Pool
) -> None:
    window = {"limit": 5, "period_seconds": 3600}  # an hour: the burst is inside it
    assert pool.one(0, "POST", "/__admin/rate-limit", window)[0] == 200
    headers = _platform_headers(served[1])
    statuses = [s for s, _ in pool.all("GET", "/api/data-fetch/v1/players", headers=headers)]
    assert statuses.count(429) == CONNECTIONS - 5, statuses


def test_a_clock_move_and_a_fault_count_are_every_workers(pool: Pool) -> None:
    status, _ = pool.one(0, "POST", "/__admin/clock", {"set": "2031-05-06T07:08:09Z"})
    assert status == 200
    seen = [answer["now"] for _, answer in pool.all("GET", "/__admin/clock")]
    assert all("2031-05-06T07:08:09" <= now < "2031-05-06T08" for now in seen), seen
    rule = {"path": "/no-such-path/*", "status": 418, "times": 3}
    assert pool.one(0, "POST", "/__admin/faults", rule)[0] == 201
    statuses = [status for status, _ in pool.all("GET", "/no-such-path/{i}", count=32)]
    assert statuses.count(418) == 3, statuses
    _, journal = pool.one(1, "GET", "/__admin/requests")
    ids = [entry["id"] for entry in journal["requests"]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # one sequence over both workers
    assert sum(entry["path"].startswith("/no-such-path/") for entry in journal["requests"]) == 32


class Listener:
    """A Socket.IO client queueing the pushes it receives; `fresh`: a new connection for
    every HTTP request (long-polling requests spread over both workers)."""

    def __init__(
        self, url: str, token: str, transports: list[str], *, fresh: bool, path: str = "socket.io"
    ) -> None:
        session = requests.Session()
        session.trust_env = False
        if fresh:
            session.headers["Connection"] = "close"
        self.client = socketio.Client(reconnection=False, http_session=session, handle_sigint=False)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client.on("*", lambda event, data: self.events.put((event, data)))
        self.client.connect(
            url, transports=transports, auth={"token": token}, wait_timeout=TIMEOUT,
            socketio_path=path,
        )

    def progress(self, count: int) -> list[Any]:
        """The wager mission's progress in the next `count` pushes of it."""
        found = []
        while len(found) < count:
            event, data = self.events.get(timeout=TIMEOUT)
            if event == "missions:on:progress" and data["_id"] == "slots-wager":
                found.append(data)
        return found


@pytest.mark.parametrize("space", ["default", "sandbox"])
def test_every_push_reaches_its_player_on_either_worker(
    served: tuple[subprocess.Popen[str], str],
    pool: Pool,
    monkeypatch: pytest.MonkeyPatch,
    space: str,
) -> None:
    """In the default space, and in a sandbox whose PEP each worker builds on first sight
    (D223): its sessions owned by a worker, its emits crossing workers."""
    # python-engineio's client drops a connection whose polling answer holds more than 16
    # packets (a burst of pushes queued while its next GET was on its way): not the server's
    # doing, and not what this test is about.
    monkeypatch.setattr(engineio.payload.Payload, "max_decode_packets", 10_000)
    prefix = ""
    if space == "sandbox":
        status, made = pool.one(0, "POST", "/__admin/sandboxes", {})
        assert status == 201, made
        prefix = f"/__sandbox/{made['id']}"
    url = served[1] + prefix
    player = generate(42, anchor=datetime.now(UTC), rounds=0).players[0]
    answer = requests.post(
        url + "/api/auth/v1/player", timeout=TIMEOUT,
        json={"identityToken": player.identity_token, "clientId": pep_mock.DEMO_CLIENT_ID},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["accessToken"]
    path = (prefix + "/socket.io").lstrip("/")
    listeners = [
        Listener(served[1], token, ["polling"], fresh=True, path=path),
        Listener(served[1], token, ["polling"], fresh=True, path=path),
        # upgraded, maybe relayed
        Listener(served[1], token, ["polling", "websocket"], fresh=True, path=path),
        Listener(served[1], token, ["polling", "websocket"], fresh=True, path=path),
        Listener(served[1], token, ["websocket"], fresh=False, path=path),
    ]
    try:
        sids = [listener.client.eio.sid for listener in listeners]
        assert {sid.split(".")[0] for sid in sids} <= {"0", "1"}, sids  # each names its worker
        assert [listener.client.transport() for listener in listeners] == [
            "polling", "polling", "websocket", "websocket", "websocket"
        ]
        headers = _platform_headers(url)
        # Wagers of 1 EUR on slots, each its own event, over both workers.
        pushes = [
            {"gameTransactionRound": [bet(f"sio{n}", playerId=player.player_id,
                                          realMoneyAmount=1, gameCategoryName="Slots")]}
            for n in range(PUSHES)
        ]
        answers = _post_all(pool, prefix + ROUND, pushes, headers)
        assert {status for status, _ in answers} == {202}
        for listener in listeners:
            progress = listener.progress(PUSHES)
            # Each event's push once: the mission's sum went 1, 2, … PUSHES EUR.
            values = sorted(p["objectives"][0]["progress"] for p in progress)
            assert values == list(range(1, PUSHES + 1)), progress
    finally:
        for listener in listeners:
            listener.client.disconnect()
        if prefix:
            pool.one(0, "DELETE", "/__admin/sandboxes/" + prefix.rsplit("/", 1)[1])


def test_session_ids_draw_one_seeded_sequence_whatever_the_worker(tmp_path: Path) -> None:
    import random

    from pepharness.mocks.core.state import JTI_DRAWS, SharedDraws, SharedState

    state = SharedState(str(tmp_path / "state.sqlite3"))
    # Two workers' sequences on one state (each its own generator), and one process's.
    workers = [SharedDraws(state, JTI_DRAWS, 42, 128), SharedDraws(state, JTI_DRAWS, 42, 128)]
    alone = random.Random(42)
    pattern = [1, 0, 0, 1, 1, 1, 0, 1, 0, 0]
    assert [workers[w].next() for w in pattern] == [alone.getrandbits(128) for _ in pattern]
    workers[0].next()  # a draw on one worker, then a reset on the other: from the seed again
    workers[1].reset()
    alone = random.Random(42)
    assert [workers[w].next() for w in pattern] == [alone.getrandbits(128) for _ in pattern]


def test_another_workers_session_is_answered_by_its_owner(tmp_path: Path) -> None:
    """Two workers' apps in this process on one shared state: a session opened on worker 0 is
    polled through worker 1 (forwarded) and upgraded to WebSocket through worker 1 (relayed)."""
    import websocket

    from pepharness.mocks.core.state import SharedState
    from pepharness.mocks.pep.realtime_workers import PRIVATE_PORT_EXTENSION

    state = SharedState(str(tmp_path / "pep-state.sqlite3"))
    state.ring("journal", 1000)
    config = {"SEED": 42, "DATABASE": str(tmp_path / "pep.sqlite3"), "STATE": state,
              "OPERATOR_URL": "http://127.0.0.1:9", "ENGINE": False}
    pep_mock.prepare_database(config["DATABASE"])
    apps = [pep_mock.create_app({**config, "WORKER": index}) for index in (0, 1)]
    with ThreadedServer(apps[0]) as owner, ThreadedServer(apps[1]) as other:
        opened = requests.get(f"{owner.url}/socket.io/?EIO=4&transport=polling", timeout=TIMEOUT)
        sid = json.loads(opened.text[1:])["sid"]
        assert sid.startswith("0.")
        query = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        # A packet (a pong) posted through worker 1 is taken by the session on worker 0.
        assert requests.post(other.url + query, data="3", timeout=TIMEOUT).text == "OK"
        ws = websocket.create_connection(
            other.url.replace("http", "ws") + query.replace("polling", "websocket"),
            timeout=TIMEOUT,
        )
        try:
            ws.send("2probe")
            assert ws.recv() == "3probe"  # answered by worker 0, through worker 1's relay
        finally:
            ws.close()
        unknown = requests.get(f"{other.url}/socket.io/?EIO=4&transport=polling&sid=7.x",
                               timeout=TIMEOUT)
        assert unknown.status_code == 400  # no worker 7: Engine.IO's own answer
    for app in apps:
        app.extensions[PRIVATE_PORT_EXTENSION].stop()
        pep_mock.backend_of(app).store.close()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (CI installs it)")
def test_the_official_js_client_gets_every_push_from_both_workers(
    served: tuple[subprocess.Popen[str], str], pool: Pool
) -> None:
    """The official socket.io-client (tests/js/listen.mjs: its default options, which poll
    then upgrade, and WebSocket only) against two workers: each wager's push arrives once on
    both connections, whichever worker took the wager or holds the connection."""
    from test_pep_realtime_js import NodeListener

    player = generate(42, anchor=datetime.now(UTC), rounds=0).players[1]
    answer = requests.post(
        served[1] + "/api/auth/v1/player", timeout=TIMEOUT,
        json={"identityToken": player.identity_token, "clientId": pep_mock.DEMO_CLIENT_ID},
    )
    assert answer.status_code == 200, answer.text
    listener = NodeListener(served[1], answer.json()["accessToken"])
    try:
        listener.until(
            lambda seen: {line["client"] for line in seen if line["type"] == "ready"}
            == {"default", "websocket"}, "both clients connected")
        wagers = [
            {"gameTransactionRound": [bet(f"js{n}", playerId=player.player_id,
                                          realMoneyAmount=1, gameCategoryName="Slots")]}
            for n in range(PUSHES)
        ]
        answers = _post_all(pool, ROUND, wagers, _platform_headers(served[1]))
        assert {status for status, _ in answers} == {202}

        def progress(seen: list[dict[str, Any]], client: str) -> list[Any]:
            return sorted(
                line["data"]["objectives"][0]["progress"] for line in seen
                if line["type"] == "event" and line["client"] == client
                and line["event"] == "missions:on:progress"
                and line["data"]["_id"] == "slots-wager"
            )

        seen = listener.until(
            lambda seen: all(len(progress(seen, c)) >= PUSHES for c in ("default", "websocket")),
            f"{PUSHES} wager pushes on both clients",
        )
        for client in ("default", "websocket"):  # each push once: 1, 2, … PUSHES EUR
            assert progress(seen, client) == list(range(1, PUSHES + 1)), client
    finally:
        code = listener.close()
    assert code == 0, listener.stderr()
