"""The reference PEP on a real PostgreSQL server (tests/conftest.py starts it, or the tests are
skipped saying why): the engine's batches claimed safely by several engines on one database,
and two PEP instances on one database, each ingesting and applying events, that apply every
event exactly once between them. The engine's other tests run on PostgreSQL too
(tests/test_pep_engine.py's `database`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from test_pep_engine import T0, money
from test_pep_platform_http import bet, deposit

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.clock import Clock
from pepharness.mocks.pep.engine import ReactiveEngine
from pepharness.mocks.pep.engine_config import EngineConfig
from pepharness.mocks.pep.engine_domain import Rules
from pepharness.mocks.pep.events import EventLog, platform_events
from pepharness.mocks.pep.store import Store

TOKEN = "/api/oauth/v1/token"
MONEY = "/rx-api/transactions/v1/money-transaction"
ROUND = "/rx-api/transactions/v1/game-transaction-round"
CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"
RATES = ("1", "1.1", "0.85", "1.25")
DEFAULT = EngineConfig.load()


@pytest.fixture
def store(postgresql: str) -> Iterator[Store]:
    opened = Store(postgresql)
    yield opened
    opened.close()


def _engine(store: Store) -> ReactiveEngine:
    return ReactiveEngine(store.engine, clock=Clock(lambda: T0), config=DEFAULT)


def test_a_second_engine_skips_the_batch_another_holds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engine A holds its batch (p1, p2) open; engine B claims the next one (p3, p4) meanwhile,
    then the events of p1 that arrived later wait for A's commit: each applied once, all of them."""
    log = EventLog(store.engine)
    first = [money(f"p{1 + n % 2}", f"a{n}", 10 + n) for n in range(10)]
    second = [money(f"p{3 + n % 2}", f"b{n}", 100 + n) for n in range(10)]
    later = [money("p1", f"c{n}", 1000 + n) for n in range(3)]
    log.append(first + second + later, client_id=CLIENT, received_at=T0)
    a, b = _engine(store), _engine(store)
    holding, release = threading.Event(), threading.Event()
    save = ReactiveEngine._save

    def held_save(self: ReactiveEngine, *args: Any) -> None:
        if self is a and not release.is_set():
            holding.set()
            assert release.wait(30)
        save(self, *args)

    monkeypatch.setattr(ReactiveEngine, "_save", held_save)
    applied: dict[str, int] = {}
    thread = threading.Thread(target=lambda: applied.setdefault("a", a.apply_pending(limit=10)))
    thread.start()
    assert holding.wait(30)
    assert b.apply_pending(limit=10) == 10  # A's batch is skipped, not waited for
    waiting = threading.Thread(target=lambda: applied.setdefault("b", b.apply_pending()))
    waiting.start()  # p1's later events: B waits for A's commit on p1
    release.set()
    thread.join(30)
    waiting.join(30)
    assert applied == {"a": 10, "b": 3}
    assert log.count(pending_only=True) == 0
    for player, events in {"p1": first[0::2] + later, "p2": first[1::2]}.items():
        state = a.player_state(player)
        assert state is not None
        assert state["depositCount"] == len(events)
        assert state["deposits"] == sum(event.body["amount"] for event in events)
    state = b.player_state("p3")
    assert state is not None and state["depositCount"] == 5


def test_a_failed_batch_on_postgresql_is_rolled_back_and_applied_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    EventLog(store.engine).append(
        [money("p1", f"d{n}", 10) for n in range(4)], client_id=CLIENT, received_at=T0
    )
    engine = _engine(store)
    settle = Rules._settle

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(Rules, "_settle", crash)
    with pytest.raises(RuntimeError):
        engine.apply_pending()
    monkeypatch.setattr(Rules, "_settle", settle)
    assert engine.pending() == 4
    assert engine.apply_pending() == 4
    state = engine.player_state("p1")
    assert state is not None and state["depositCount"] == 4


# -- two PEP instances on one database ----------------------------------------------------------

PLAYERS = 30
EVENTS = 400


def _events() -> list[tuple[str, dict[str, Any]]]:
    """EVENTS events of PLAYERS players: deposits (at several exchange rates) and rounds of a
    BET, as the gateway takes them."""
    made: list[tuple[str, dict[str, Any]]] = []
    for number in range(EVENTS):
        player, rate = f"pg-{number % PLAYERS}", float(RATES[number % len(RATES)])
        if number % 3:
            made.append((MONEY, deposit(
                f"m{number}", playerId=player, amount=1 + number % 97, exchangeRate=rate
            )))
        else:
            item = bet(f"r{number}", playerId=player, realMoneyAmount=2 + number % 13,
                       exchangeRate=rate)
            made.append((ROUND, {"gameTransactionRound": [item]}))
    return made


def _send(url: str, events: list[tuple[str, dict[str, Any]]], codes: list[int]) -> None:
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(
            url + TOKEN, data={"grant_type": "client_credentials"}, auth=(CLIENT, SECRET),
            timeout=10,
        )
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        for path, body in events:
            answer = session.post(url + path, json=body, headers=headers, timeout=10)
            codes.append(answer.status_code)


def test_two_pep_instances_on_one_database_apply_every_event_once(
    postgresql: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Both instances ingest (every fifth event is sent to both: one row, a duplicate answered)
    and both engines run: each player's aggregates count each event exactly once, and no
    batch failed on the way (no deadlock, no conflict retried)."""
    from pepharness.mocks import pep
    from pepharness.mocks.pep.reads import engine_of

    config = {"SEED": 42, "DATABASE": postgresql, "OPERATOR_URL": "http://127.0.0.1:9"}
    # Started together: one creates the tables and seeds the clients, then the other (D195).
    with ThreadPoolExecutor(2) as starting:
        apps = list(starting.map(pep.create_app, [config, config]))
    made = _events()
    try:
        with ThreadedServer(apps[0], threads=4) as one, ThreadedServer(apps[1], threads=4) as two:
            codes: list[list[int]] = [[], []]
            # Half the events to each instance, and every fifth again to the other one.
            shares = [made[0::2] + made[1::10], made[1::2] + made[0::10]]
            senders = [
                threading.Thread(target=_send, args=(server.url, share, answers))
                for server, share, answers in zip((one, two), shares, codes, strict=True)
            ]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(60)
            assert all(code == 202 for answers in codes for code in answers), codes
            assert sum(map(len, codes)) == EVENTS + EVENTS // 5
            engines = [engine_of(app) for app in apps]
            assert all(engine.running for engine in engines)
            assert all(engine.converged(60) for engine in engines)
    finally:
        for app in apps:
            engine_of(app).stop()
    expected: dict[str, dict[str, Any]] = {}
    for path, body in made:
        player = body["playerId"] if path == MONEY else body["gameTransactionRound"][0]["playerId"]
        totals = expected.setdefault(player, {"deposits": Decimal(0), "count": 0,
                                                        "bets": Decimal(0)})
        if path == MONEY:
            totals["deposits"] += Decimal(str(body["amount"])) * Decimal(str(body["exchangeRate"]))
            totals["count"] += 1
        else:
            item = body["gameTransactionRound"][0]
            totals["bets"] += (
                Decimal(str(item["realMoneyAmount"])) * Decimal(str(item["exchangeRate"]))
            )
    engine = engine_of(apps[0])
    with engine.db.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(platform_events)).scalar()
    assert stored == EVENTS
    assert not [record for record in caplog.records if record.name == "pepharness.pep.engine"]
    for player, totals in expected.items():
        state = engine.player_state(player)
        assert state is not None, player
        assert Decimal(str(state["deposits"])) == totals["deposits"], player
        assert state["depositCount"] == totals["count"], player
        assert Decimal(str(state["bets"])) == totals["bets"], player


def test_a_database_that_cannot_be_opened_is_one_line_without_its_password() -> None:
    """`serve pep` on a PostgreSQL server that is not there: one line, exit 2 (D194)."""
    pytest.importorskip("psycopg")
    from click.testing import CliRunner

    from pepharness.cli import cli

    url = "postgresql://pep:s3cret@127.0.0.1:1/pep"
    result = CliRunner().invoke(cli, ["serve", "pep", "--port", "0", "--database", url])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "s3cret" not in result.output
    assert "cannot open the database postgresql+psycopg://pep:***@127.0.0.1:1/pep: " in lines[0]
