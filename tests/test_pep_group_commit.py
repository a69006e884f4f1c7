"""The event log's group commit (D227) and the writers' gate (D226): concurrent appends share
a transaction, each returns only once its events are committed, a repeat is a duplicate
whichever call of a group stored it first, and one failing call fails alone."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select

from pepharness.mocks.core.state import FileRLock
from pepharness.mocks.pep import events as events_module
from pepharness.mocks.pep.events import EventLog, NewEvent, platform_events
from pepharness.mocks.pep.store import Store, database_url, write_gate

WHEN = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    where: Path | str = tmp_path / "pep.sqlite3"
    if request.param == "postgresql":
        where = str(request.getfixturevalue("postgresql"))
    opened = Store(database_url(where))
    yield opened
    opened.close()


def deposit(key: str, player: str = "p-1") -> NewEvent:
    body = {"playerId": player, "amount": 5, "transactionId": key}
    return NewEvent(f"money:{key}", "money", player, WHEN, body)


def _stored(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(platform_events)).scalar())


def _commits(store: Store) -> list[int]:
    """A list that counts the database's commits from now on."""
    counted: list[int] = []
    event.listen(store.engine, "commit", lambda connection: counted.append(1))
    return counted


class _Held:
    """The writers' gate held by the test until `release()`: appends queue behind it."""

    def __init__(self, log: EventLog) -> None:
        self.log, self.gate = log, write_gate(log.engine)
        self._taken, self._go = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with self.log._leader, self.gate:
            self._taken.set()
            self._go.wait(30)

    def __enter__(self) -> _Held:
        self._thread.start()
        assert self._taken.wait(10)
        return self

    def release(self) -> None:
        self._go.set()
        self._thread.join(10)

    def __exit__(self, *exc: object) -> None:
        self.release()


def _append_in_threads(log: EventLog, batches: list[list[NewEvent]]) -> list[Any]:
    out: list[Any] = [None] * len(batches)

    def run(index: int) -> None:
        try:
            out[index] = log.append(batches[index], client_id="c", received_at=WHEN)
        except Exception as error:  # recorded for the test to look at
            out[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    return [threads, out]


def _queued(log: EventLog, count: int) -> None:
    for _ in range(1000):
        with log._waiting_lock:
            if len(log._waiting) >= count:
                return
        threading.Event().wait(0.005)
    raise AssertionError(f"{count} calls never queued")


def test_calls_queued_together_share_one_commit_and_each_gets_its_own_rows(store: Store) -> None:
    log = EventLog(store.engine)
    batches = [[deposit(f"t-{n}-a"), deposit(f"t-{n}-b")] for n in range(12)]
    with _Held(log) as held:
        threads, out = _append_in_threads(log, batches)
        _queued(log, 12)
        assert all(result is None for result in out)  # nothing returns before its commit
        commits = _commits(store)
        held.release()
        for thread in threads:
            thread.join(30)
    assert len(commits) == 1, "one transaction for the twelve calls queued together"
    seqs = [stored.seq for result in out for stored in result]
    assert len(set(seqs)) == 24 and not any(s.duplicate for r in out for s in r)
    assert _stored(store) == 24
    with store.engine.connect() as connection:
        rows = connection.execute(select(platform_events.c.seq, platform_events.c.event_key))
        keys = {row.seq: row.event_key for row in rows}
    for batch, result in zip(batches, out, strict=True):  # each call's seqs are its events'
        assert [keys[stored.seq] for stored in result] == [e.key for e in batch]


def test_a_repeat_in_the_same_group_is_a_duplicate_of_the_first(store: Store) -> None:
    log = EventLog(store.engine)
    with _Held(log):
        threads, out = _append_in_threads(log, [[deposit("same")], [deposit("same")]])
        _queued(log, 2)
    for thread in threads:
        thread.join(30)
    first, second = sorted((r[0] for r in out), key=lambda stored: stored.duplicate)
    assert not first.duplicate and second.duplicate and first.seq == second.seq
    assert _stored(store) == 1
    again = log.append([deposit("same")], client_id="c", received_at=WHEN)
    assert again[0].duplicate and again[0].seq == first.seq


def test_a_failing_call_fails_alone(store: Store) -> None:
    log = EventLog(store.engine)
    bad = NewEvent("money:bad", "money", "p-1", WHEN, {"not json": object()})
    with _Held(log):
        threads, out = _append_in_threads(log, [[deposit("ok-1")], [bad], [deposit("ok-2")]])
        _queued(log, 3)
    for thread in threads:
        thread.join(30)
    assert isinstance(out[1], TypeError)
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)
    assert _stored(store) == 2  # the group was rolled back and its good calls stored again


def test_nothing_is_acknowledged_when_the_commit_fails(store: Store) -> None:
    log = EventLog(store.engine)

    def refuse(connection: Any) -> None:
        raise RuntimeError("disk full")

    event.listen(store.engine, "commit", refuse)
    with pytest.raises(RuntimeError, match="disk full"):
        log.append([deposit("lost")], client_id="c", received_at=WHEN)
    event.remove(store.engine, "commit", refuse)
    assert _stored(store) == 0


def test_the_gate_on_a_sqlite_file_is_a_file_lock_beside_it(tmp_path: Path) -> None:
    engine = create_engine(database_url(tmp_path / "pep.sqlite3"))
    gate = write_gate(engine)
    assert isinstance(gate, FileRLock) and gate.path == f"{tmp_path}/pep.sqlite3-writers"
    assert write_gate(engine) is gate  # one gate per database engine
    assert not isinstance(write_gate(create_engine("sqlite://")), FileRLock)
    engine.dispose()


def test_the_gate_keeps_the_engine_and_ingestion_apart(tmp_path: Path) -> None:
    """Held by one writer, the gate keeps another process's append waiting (flock), and the
    append goes through once it is let go."""
    import multiprocessing

    path = tmp_path / "pep.sqlite3"
    Store(database_url(path)).close()
    gate = FileRLock(f"{path}-writers")
    context = multiprocessing.get_context("fork")
    done = context.Event()

    def child() -> None:
        store = Store(database_url(path))
        EventLog(store.engine).append([deposit("from-child")], client_id="c", received_at=WHEN)
        done.set()

    with gate:
        process = context.Process(target=child)
        process.start()
        assert not done.wait(1.0), "the append went through a held gate"
    assert done.wait(30)
    process.join(30)
    with contextlib.closing(Store(database_url(path))) as store:
        assert _stored(store) == 1


def test_postgresql_has_no_gate() -> None:
    engine = create_engine("postgresql+psycopg://user@127.0.0.1:1/none")
    assert isinstance(write_gate(engine), contextlib.nullcontext)
    assert events_module.EventLog(engine)._insert_sql.order is None  # named parameters there
