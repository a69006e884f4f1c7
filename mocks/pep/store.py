"""The PEP's state in a SQL database: its API clients and its players' sessions.

SQLAlchemy Core, so the same code runs on a SQLite file (the default) or on PostgreSQL (a URL).
Times are stored as RFC 3339 text, readable with any SQL client.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from pepharness.mocks.core.clock import parse_rfc3339, to_rfc3339
from pepharness.mocks.core.state import FileRLock

GATEWAYS = ("frontend", "platform")
HASH_ITERATIONS = 20_000

metadata = MetaData()

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("secret_hash", String(256), nullable=False),
    Column("gateways", String(64), nullable=False),
)

player_sessions = Table(
    "player_sessions",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("player_id", String(256), nullable=False, index=True),
    Column("client_id", String(128), ForeignKey("api_clients.client_id"), nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("operator_expires_at", String(40), nullable=True),
)


class ClientExists(Exception):
    """An API client with this id exists already."""


def database_url(database: str | Path) -> str:
    """An SQLAlchemy URL for `database`: a URL as it is, anything else a SQLite file path.
    A PostgreSQL URL without a driver (`postgresql://`, `postgres://`) is given psycopg 3's,
    the one the `postgres` extra installs (D193)."""
    text = str(database)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return text


def hash_secret(client_id: str, secret: str) -> str:
    """A PBKDF2 hash of a client's secret, salted with its id: secrets are never stored."""
    digest = hashlib.pbkdf2_hmac(
        "sha256", secret.encode(), client_id.encode(), HASH_ITERATIONS
    ).hex()
    return f"pbkdf2_sha256${HASH_ITERATIONS}${digest}"


@dataclass(frozen=True)
class ClientSpec:
    """An API client as configured: its secret in clear, to be hashed when stored."""

    client_id: str
    client_secret: str
    gateways: tuple[str, ...] = GATEWAYS

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise ValueError("an API client needs a non-empty clientId and clientSecret")
        unknown = sorted(set(self.gateways) - set(GATEWAYS))
        if unknown or not self.gateways:
            raise ValueError(f"gateways must be a non-empty subset of {', '.join(GATEWAYS)}")

    def row(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "secret_hash": hash_secret(self.client_id, self.client_secret),
            "gateways": " ".join(sorted(set(self.gateways))),
        }


@dataclass(frozen=True)
class ApiClient:
    """An API client as stored."""

    client_id: str
    secret_hash: str
    gateways: tuple[str, ...]

    def allows(self, gateway: str) -> bool:
        return gateway in self.gateways

    def check_secret(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(self.client_id, secret))

    def to_json(self) -> dict[str, Any]:
        return {"clientId": self.client_id, "gateways": list(self.gateways)}


@dataclass(frozen=True)
class PlayerSession:
    """One access token the PEP issued, by its `jti`."""

    jti: str
    player_id: str
    client_id: str
    issued_at: datetime
    expires_at: datetime
    operator_expires_at: datetime | None = None

    def row(self) -> dict[str, str | None]:
        return {
            "jti": self.jti,
            "player_id": self.player_id,
            "client_id": self.client_id,
            "issued_at": to_rfc3339(self.issued_at),
            "expires_at": to_rfc3339(self.expires_at),
            "operator_expires_at": (
                None if self.operator_expires_at is None else to_rfc3339(self.operator_expires_at)
            ),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "sessionId": self.jti,
            "playerId": self.player_id,
            "clientId": self.client_id,
            "issuedAt": to_rfc3339(self.issued_at),
            "expiresAt": to_rfc3339(self.expires_at),
        }


def _client(row: Any) -> ApiClient:
    return ApiClient(row.client_id, row.secret_hash, tuple(row.gateways.split()))


def _session(row: Any) -> PlayerSession:
    return PlayerSession(
        jti=row.jti,
        player_id=row.player_id,
        client_id=row.client_id,
        issued_at=parse_rfc3339(row.issued_at),
        expires_at=parse_rfc3339(row.expires_at),
        operator_expires_at=(
            None if row.operator_expires_at is None else parse_rfc3339(row.operator_expires_at)
        ),
    )


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers never wait for the writer; NORMAL: a commit survives the process being
    # killed (not a power cut), which is what "stored before the 202" has to hold against.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_GATES: weakref.WeakKeyDictionary[Engine, Any] = weakref.WeakKeyDictionary()
_GATES_LOCK = threading.Lock()


def write_gate(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    """The lock the PEP's hot writers (the event log's append, the engine's batch) take around
    their write transaction on a SQLite file (D226): a waiting writer wakes when the other
    commits, where SQLite's busy handler sleeps 1, 2, 5 … 100 ms between tries. A thread lock
    and `flock` on `<file>-writers` beside the database, so every worker process (and every
    `serve pep` on the same file) queues on it; a writer that does not take it (the admin API,
    sessions) still meets SQLite's own lock. PostgreSQL locks rows and wakes its waiters
    itself: no gate there."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    with _GATES_LOCK:
        gate = _GATES.get(engine)
        if gate is None:
            path = engine.url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                gate = FileRLock(f"{path}-writers")
            else:  # one process's own database: a thread lock is the whole gate
                gate = threading.RLock()
            _GATES[engine] = gate
    return gate


# Any constant: the lock PEP instances starting together on one PostgreSQL database take
# around creating their tables (CREATE TABLE is not safe to race there).
_SCHEMA_LOCK = 0x7065706861726E  # "pepharn"


def create_tables(engine: Engine, tables: Sequence[Table] | None = None) -> None:
    """Create `tables` (every table of `metadata` by default) that do not exist yet; on
    PostgreSQL under a transaction-scoped advisory lock, so that instances starting together
    do not both create them."""
    with engine.begin() as connection:
        _lock_schema(connection)
        metadata.create_all(connection, tables=None if tables is None else list(tables))


def _lock_schema(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})


class Store:
    """The clients and sessions of one PEP, in the database at `url`. Thread-safe: every
    call runs in its own transaction on a pooled connection."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        # SQLite waits up to 10 s for a lock instead of failing at once under concurrent writes.
        connect_args = {"timeout": 10} if url.startswith("sqlite") else {}
        self.engine: Engine = create_engine(url, echo=echo, connect_args=connect_args)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        create_tables(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def seed_clients(self, clients: Iterable[ClientSpec]) -> None:
        """Make each configured client exist as configured (other clients are kept); on
        PostgreSQL one instance at a time, as the tables are created."""
        with self.engine.begin() as connection:
            _lock_schema(connection)
            for spec in clients:
                row = spec.row()
                exists = connection.execute(
                    select(api_clients.c.client_id).where(api_clients.c.client_id == spec.client_id)
                ).first()
                if exists is None:
                    connection.execute(insert(api_clients).values(**row))
                else:
                    connection.execute(
                        api_clients.update()
                        .where(api_clients.c.client_id == spec.client_id)
                        .values(secret_hash=row["secret_hash"], gateways=row["gateways"])
                    )

    def reset(self, clients: Sequence[ClientSpec]) -> None:
        """No session, and exactly the configured clients."""
        with self.engine.begin() as connection:
            connection.execute(delete(player_sessions))
            connection.execute(delete(api_clients))
            for spec in clients:
                connection.execute(insert(api_clients).values(**spec.row()))

    def client(self, client_id: str) -> ApiClient | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(api_clients).where(api_clients.c.client_id == client_id)
            ).first()
        return None if row is None else _client(row)

    def clients(self) -> list[ApiClient]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(api_clients).order_by(api_clients.c.client_id))
            return [_client(row) for row in rows]

    def add_client(self, spec: ClientSpec) -> ApiClient:
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(api_clients).values(**spec.row()))
        except IntegrityError:
            raise ClientExists(f"an API client {spec.client_id!r} exists already") from None
        found = self.client(spec.client_id)
        assert found is not None
        return found

    def add_session(self, session: PlayerSession) -> bool:
        """Store `session`; False when its `jti` is taken (nothing stored)."""
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(player_sessions).values(**session.row()))
        except IntegrityError:
            if self.session(session.jti) is not None:
                return False
            raise  # another constraint: the client is gone
        return True

    def session(self, jti: str) -> PlayerSession | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(player_sessions).where(player_sessions.c.jti == jti)
            ).first()
        return None if row is None else _session(row)

    def sessions(self) -> list[PlayerSession]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(player_sessions).order_by(player_sessions.c.issued_at, player_sessions.c.jti)
            )
            return [_session(row) for row in rows]

    def delete_session(self, jti: str) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(delete(player_sessions).where(player_sessions.c.jti == jti))
        return bool(result.rowcount)
