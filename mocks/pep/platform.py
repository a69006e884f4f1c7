"""The reference PEP's Platform gateway: events in (202, stored before the answer, counted once),
the bulk player sync with its per-player report and the operator's feedback, and the data-fetch
reads with their cursor and rate limit. No Flask here: the routes are in platform_routes.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import Column, Engine, Integer, String, Table, Text, delete, func, select
from sqlalchemy.exc import IntegrityError

from pepharness.mocks.core.clock import Clock, parse_rfc3339, to_rfc3339
from pepharness.mocks.core.encoding import (
    BodyTooLarge,
    UndecodableBody,
    UnknownCoding,
    decode_body,
)
from pepharness.mocks.core.ratelimit import RateLimiter
from pepharness.mocks.core.state import SharedDraws
from pepharness.mocks.pep import errors, validation
from pepharness.mocks.pep.events import EventLog, NewEvent, dialect_insert, platform_events
from pepharness.mocks.pep.store import metadata

MAX_SYNC_PLAYERS = 20_000
MAX_SYNC_BYTES = 15 * 1024 * 1024
MAX_LISTED_ERRORS = 1000
MAX_FETCH = 1000
DATA_FETCH_LIMIT = (100, 60.0)
FEEDBACK_PATH = "/api/players/v1/migration/feedback"
FEEDBACK_TIMEOUT_SECONDS = 5.0
TASK_ID_ATTEMPTS = 1000

platform_players = Table(
    "platform_players",
    metadata,
    Column("player_id", String(256), primary_key=True),
    Column("change_seq", Integer, nullable=False, unique=True),
    Column("updated_at", String(40), nullable=False, index=True),
    Column("registered_at", String(40), nullable=True),
    Column("document", Text, nullable=False),
)

migration_tasks = Table(
    "migration_tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("report", Text, nullable=False),
    Column("feedback", String(200), nullable=False),
)


@dataclass(frozen=True)
class Kind:
    """One reactive event endpoint: how its body is checked and what identifies an event."""

    name: str
    check: Callable[[Any], list[validation.Problem]]
    key: Callable[[Mapping[str, Any]], str]


def _tags_key(body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(sorted(body["tags"])).encode()).hexdigest()[:32]
    return f"tags:{body['playerId']}:{digest}"


KINDS = {
    "money": Kind(
        "money",
        lambda body: validation.check(body, validation.MONEY),
        # A deposit sent PENDING then APPROVED is two events: the approval must count.
        lambda body: f"money:{body['transactionId']}:{body['transactionStatus']}",
    ),
    "registration": Kind(
        "registration",
        lambda body: validation.check(body, validation.REGISTRATION),
        lambda body: f"registration:{body['playerId']}",
    ),
    "login": Kind(
        "login",
        lambda body: validation.check(body, validation.LOGIN),
        lambda body: f"login:{body['playerId']}:{to_rfc3339(validation.when(body))}",
    ),
    "tags": Kind("tags", lambda body: validation.check(body, validation.TAGS), _tags_key),
}


INVALID_QUERY = "invalid query parameters"
"""The data fetch's 400 message (its errors name the parameters)."""
CURSOR_POSITION = re.compile(r"0|[1-9][0-9]{0,17}")


class Cursor:
    """`next`: an opaque token for "after item N of this list"."""

    @staticmethod
    def encode(listing: str, after: int) -> str:
        return base64.urlsafe_b64encode(f"{listing}:{after}".encode()).decode().rstrip("=")

    @staticmethod
    def decode(listing: str, token: str) -> int:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            name, _, after = text.partition(":")
            # Only what encode() writes: ASCII digits an SQLite integer holds.
            if name != listing or not CURSOR_POSITION.fullmatch(after):
                raise ValueError(text)
            return int(after)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise errors.InvalidEvent(
                [{"field": "next", "message": "is not a cursor of this list"}],
                INVALID_QUERY,
            ) from None


def decompress(raw: bytes, encoding: str | None) -> bytes:
    """The body as sent before `Content-Encoding` (gzip, br, deflate or none), at most
    MAX_SYNC_BYTES of it."""
    coding = (encoding or "identity").strip().lower()
    try:
        return decode_body(raw, coding, MAX_SYNC_BYTES)
    except UnknownCoding:
        raise errors.UnsupportedEncoding() from None
    except UndecodableBody:
        raise errors.InvalidEvent(
            [{"field": "body", "message": f"is not valid {coding} data"}]
        ) from None
    except BodyTooLarge:
        raise errors.PayloadTooLarge() from None


def _json(raw: bytes) -> Any:
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise errors.InvalidEvent([{"field": "body", "message": "is not JSON"}]) from None
    try:
        # A `\\ud800` escape parses to a lone surrogate, which no store or answer can encode.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidEvent(
            [{"field": "body", "message": "holds a lone surrogate (text UTF-8 cannot encode)"}]
        ) from None
    except RecursionError:
        raise errors.InvalidEvent([{"field": "body", "message": "is nested too deep"}]) from None
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class PlatformGateway:
    """What the Platform gateway does, on the PEP's database and the service clock."""

    def __init__(
        self,
        *,
        clock: Clock,
        db: Engine,
        operator_url: str,
        seed: int = 42,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.clock = clock
        self.db = db
        self.events = EventLog(db)
        self.limiter = RateLimiter(clock, *DATA_FETCH_LIMIT)
        self.operator_url = operator_url.rstrip("/")
        self.seed = seed
        self.wake = wake
        self._random = random.Random(f"migration:{seed}")
        self._lock = threading.Lock()
        self.players_lock: AbstractContextManager[Any] = threading.Lock()
        """One writer of players at a time; several workers share one (D208)."""
        self.shared_draws: SharedDraws | None = None
        """The task ids' seeded sequence when several workers draw from it (D208)."""

    def reset(self) -> None:
        with self.db.begin() as connection:
            for table in (platform_events, platform_players, migration_tasks):
                connection.execute(delete(table))
        self.limiter.reset()
        with self._lock:
            self._random = random.Random(f"migration:{self.seed}")
        if self.shared_draws is not None:
            self.shared_draws.reset()

    # -- reactive events -------------------------------------------------------------------

    def accept(self, kind: str, raw: bytes, client_id: str) -> dict[str, Any]:
        """One event (a round: its transactions) stored before this returns; a repeat of its
        idempotency key is acknowledged and not stored again."""
        body = _json(raw)
        if kind == "round":
            problems = validation.check_round(body)
            if problems:
                raise errors.InvalidEvent([p.to_json() for p in problems])
            items = body["gameTransactionRound"]
            new = [
                NewEvent(
                    key=f"round:{item['transactionType']}:{item['transactionId']}",
                    kind="round",
                    player_id=item["playerId"],
                    occurred_at=validation.when(item),
                    body=item,
                )
                for item in items
            ]
        else:
            spec = KINDS[kind]
            problems = spec.check(body)
            if problems:
                raise errors.InvalidEvent([p.to_json() for p in problems])
            # A tag upsert carries no date: it happens when it arrives.
            occurred = validation.when(body) if "date" in body else self.clock.now()
            new = [
                NewEvent(
                    key=spec.key(body),
                    kind=kind,
                    player_id=body["playerId"],
                    occurred_at=occurred,
                    body=body,
                )
            ]
        stored = self.events.append(new, client_id=client_id, received_at=self.clock.now())
        if kind == "registration" and not stored[0].duplicate:
            self._upsert_players([_registered(body)], merge=True)
        if any(not s.duplicate for s in stored):
            self.wake()
        if kind == "round":
            return {
                "status": "accepted",
                "eventIds": [str(s.seq) for s in stored],
                "duplicates": sum(s.duplicate for s in stored),
            }
        first = stored[0]
        return {"status": "accepted", "eventId": str(first.seq), "duplicate": first.duplicate}

    # -- bulk player sync ------------------------------------------------------------------

    def migrate(
        self, raw: bytes, encoding: str | None, client_id: str, details_base: str
    ) -> dict[str, Any]:
        """Validate every player, store the valid ones, answer the report, and tell the
        operator when done (its feedback endpoint, in the background)."""
        body = _json(decompress(raw, encoding))
        players = body.get("players") if isinstance(body, dict) else None
        if not isinstance(players, list) or not 1 <= len(players) <= MAX_SYNC_PLAYERS:
            raise errors.InvalidEvent(
                [{"field": "players", "message": f"must be a list of 1 to {MAX_SYNC_PLAYERS:,} "
                  "players"}]
            )
        problems: list[dict[str, Any]] = []
        valid: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, player in enumerate(players):
            found = validation.check(player, validation.MIGRATED_PLAYER)
            if not found and player["playerId"] in seen:
                found = [validation.Problem("playerId", "is repeated in this batch")]
            if found:
                player_id = player.get("playerId") if isinstance(player, dict) else None
                problems += [
                    {"index": index, "playerId": player_id if isinstance(player_id, str) else None,
                     **p.to_json()}
                    for p in found
                ]
                continue
            seen.add(player["playerId"])
            valid.append(_migrated(player))
        self._upsert_players(valid)
        task_id, report = self._new_task(client_id, len(players), len(valid), problems)
        feedback = {
            "taskId": task_id,
            "storedCount": len(valid),
            "errorsTotal": len(problems),
            "detailsUrl": f"{details_base.rstrip('/')}/api/players-data/v1/migrate/batch/{task_id}",
        }
        sender = threading.Thread(
            target=self._send_feedback, args=(task_id, feedback), daemon=True,
            name=f"pep-feedback-{task_id[:8]}",
        )
        sender.start()
        return {**report, "feedback": "pending"}

    def _new_task(
        self, client_id: str, received: int, stored: int, problems: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any]]:
        """Store a task's report under a new id. Ids come from the seeded source, redrawn
        while the database holds them already (it outlives the process: after a restart the
        source starts over)."""
        for _ in range(TASK_ID_ATTEMPTS):
            if self.shared_draws is not None:
                task_id = f"{self.shared_draws.next():024x}"
            else:
                with self._lock:
                    task_id = f"{self._random.getrandbits(96):024x}"
            report = {
                "taskId": task_id,
                "received": received,
                "stored": stored,
                "errorsTotal": len(problems),
                "errors": problems[:MAX_LISTED_ERRORS],
            }
            try:
                with self.db.begin() as connection:
                    connection.execute(
                        migration_tasks.insert().values(
                            task_id=task_id,
                            client_id=client_id,
                            created_at=to_rfc3339(self.clock.now()),
                            report=json.dumps(report),
                            feedback="pending",
                        )
                    )
            except IntegrityError:
                continue
            return task_id, report
        raise RuntimeError("no free task id after many draws")

    def _send_feedback(self, task_id: str, feedback: Mapping[str, Any]) -> None:
        try:
            answer = requests.post(
                self.operator_url + FEEDBACK_PATH, json=feedback, timeout=FEEDBACK_TIMEOUT_SECONDS
            )
            code = answer.status_code
            status = "delivered" if code == 204 else f"failed: HTTP {code}"
        except requests.RequestException as error:
            status = f"failed: {type(error).__name__}"
        with self.db.begin() as connection:
            connection.execute(
                migration_tasks.update()
                .where(migration_tasks.c.task_id == task_id)
                .values(feedback=status)
            )

    def task(self, task_id: str, client_id: str) -> dict[str, Any]:
        """The report of a task of `client_id` (another client's is not found)."""
        with self.db.connect() as connection:
            row = connection.execute(
                select(migration_tasks).where(migration_tasks.c.task_id == task_id)
            ).first()
        if row is None or row.client_id != client_id:
            raise errors.TaskNotFound()
        return {**json.loads(row.report), "feedback": row.feedback}

    def _upsert_players(self, documents: list[dict[str, Any]], *, merge: bool = False) -> None:
        """Store each player's document (a bulk sync replaces it; `merge` adds the fields it
        lacks, so a registration event never wipes a synced profile)."""
        if not documents:
            return
        now = to_rfc3339(self.clock.now())
        insert = dialect_insert(self.db)
        # One writer of players at a time: each change takes the next change_seq, which two
        # transactions reading the same maximum would both take (the reference is one process;
        # SQLite serialises the writes themselves).
        with self.players_lock, self.db.begin() as connection:
            top = connection.execute(select(func.max(platform_players.c.change_seq))).scalar()
            base = int(top or 0)
            for offset, document in enumerate(documents, start=1):
                if merge:
                    known = connection.execute(
                        select(platform_players.c.document).where(
                            platform_players.c.player_id == document["playerId"]
                        )
                    ).scalar()
                    if known is not None:
                        document = {**document, **json.loads(known)}
                values = {
                    "player_id": document["playerId"],
                    "change_seq": base + offset,
                    "updated_at": now,
                    "registered_at": document.get("registrationDate"),
                    "document": json.dumps(document, separators=(",", ":")),
                }
                statement = insert(platform_players).values(**values)
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[platform_players.c.player_id],
                        set_={k: statement.excluded[k] for k in values if k != "player_id"},
                    )
                )

    # -- data fetch ------------------------------------------------------------------------

    def rate(self, client_id: str) -> None:
        """Count a data-fetch request of `client_id`: 429 past 100 a minute."""
        decision = self.limiter.hit(client_id)
        if not decision.allowed:
            raise errors.RateLimited(
                headers={
                    "Retry-After": str(decision.retry_after),
                    "RateLimit-Policy": '"default";q=100;w=60',
                    "RateLimit": f'"default";r=0;t={decision.retry_after}',
                }
            )

    def fetch(
        self, listing: str, *, limit: int, cursor: str | None, delta: datetime | None
    ) -> dict[str, Any]:
        after = Cursor.decode(listing, cursor) if cursor else 0
        since = to_rfc3339(delta) if delta is not None else None
        if listing == "players":
            query = select(platform_players).where(platform_players.c.change_seq > after)
            if since is not None:
                query = query.where(platform_players.c.updated_at > since)
            query = query.order_by(platform_players.c.change_seq).limit(limit + 1)
            with self.db.connect() as connection:
                rows = list(connection.execute(query))
            items = [_data_player(json.loads(row.document), row.updated_at) for row in rows[:limit]]
            last = rows[limit - 1].change_seq if len(rows) > limit else None
        else:
            query = select(platform_events).where(
                platform_events.c.seq > after, platform_events.c.kind.in_(("money", "round"))
            )
            if since is not None:
                query = query.where(platform_events.c.received_at > since)
            query = query.order_by(platform_events.c.seq).limit(limit + 1)
            with self.db.connect() as connection:
                rows = list(connection.execute(query))
            items = [
                {
                    "eventId": str(row.seq),
                    "kind": "money" if row.kind == "money" else "gameTransaction",
                    "receivedAt": row.received_at,
                    **json.loads(row.body),
                }
                for row in rows[:limit]
            ]
            last = rows[limit - 1].seq if len(rows) > limit else None
        return {"items": items, "next": Cursor.encode(listing, last) if last else None}


PLAYER_FIELDS = ("playerId", "registrationDate", "country", "currency", "firstName", "lastName")


def _registered(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "playerId": body["playerId"],
        "registrationDate": to_rfc3339(parse_rfc3339(body["date"])),
        "registrationDevice": body["registrationDevice"],
    }


def _migrated(player: Mapping[str, Any]) -> dict[str, Any]:
    document = {k: v for k, v in player.items() if k in validation.MIGRATED_PLAYER}
    document["registrationDate"] = to_rfc3339(parse_rfc3339(player["registrationDate"]))
    return document


def _data_player(document: Mapping[str, Any], updated_at: str) -> dict[str, Any]:
    """A stored player as the data fetch lists it: every field, null (tags `[]`) if unknown."""
    item: dict[str, Any] = {name: document.get(name) for name in PLAYER_FIELDS}
    item["tags"] = list(document.get("tags") or [])
    for optional in ("email", "birthDate", "registrationDevice"):
        if document.get(optional) is not None:
            item[optional] = document[optional]
    item["updatedAt"] = updated_at
    return item
