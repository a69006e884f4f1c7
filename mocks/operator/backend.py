"""The operator's identity tokens: one per seeded player, programmable through `/__admin/tokens`."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

from pepharness.fixtures import Dataset, generate
from pepharness.mocks.core.clock import Clock, parse_rfc3339, to_rfc3339
from pepharness.mocks.core.state import SharedState
from pepharness.mocks.operator.errors import (
    FORCED,
    InvalidParameter,
    InvalidToken,
    PlayerNotFound,
)
from pepharness.mocks.operator.received import Received, SharedReceived

DEFAULT_TOKEN_LIFETIME_SECONDS = 4 * 3600
MAX_DELAY_MS = 120_000
PROGRAMMABLE_STATUSES = (200, 400, 401, 404, 500)
TOKEN_KEYS = ("identityToken", "playerId", "expiresAt", "status", "delay_ms")

Expiry = Literal["sliding", "fixed", "none"]


class ProgramError(ValueError):
    """A `/__admin/tokens` body the operator cannot program; the message says why."""


@dataclass(frozen=True)
class TokenRule:
    """How the operator answers one identity token.

    `expiry`: "sliding" answers `expiresAt` = now + the token lifetime (every seeded token),
    "fixed" answers `expires_at` (and 401 from then on), "none" answers no `expiresAt`.
    `status` forces an answer; `delay_ms` delays every answer for this token. A token with a
    `player_id` answers 200 for it, seeded or not (D159): programming a player is the intent.
    """

    identity_token: str
    player_id: str | None
    expiry: Expiry = "sliding"
    expires_at: datetime | None = None
    status: int | None = None
    delay_ms: int = 0
    seeded: bool = False

    def to_json(
        self, now: datetime, lifetime: timedelta, seeded_players: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The rule as `/__admin/tokens` shows it; `player` says whether the player is one of
        `seeded_players` ("seeded": the PEP has its data) or only programmed ("programmed")."""
        document: dict[str, Any] = {"identityToken": self.identity_token}
        if self.player_id is not None:
            document["playerId"] = self.player_id
            document["player"] = "seeded" if self.player_id in seeded_players else "programmed"
        expires = self.expires_at if self.expiry == "fixed" else now + lifetime
        if self.expiry != "none" and expires is not None:
            document["expiresAt"] = to_rfc3339(expires)
        if self.status is not None:
            document["status"] = self.status
        document.update(delay_ms=self.delay_ms, expiry=self.expiry, seeded=self.seeded)
        return document


@dataclass(frozen=True)
class Identity:
    """The operator's 200 answer: the player and, unless the rule says none, the expiry."""

    player_id: str
    expires_at: datetime | None

    def to_json(self) -> dict[str, str]:
        document = {"playerId": self.player_id}
        if self.expires_at is not None:
            document["expiresAt"] = to_rfc3339(self.expires_at)
        return document


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: `5.0` is 5 (D73); any other value as it came."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_identity_request(raw: bytes) -> str:
    """The `identityToken` of a request body; 400 unless it is a JSON object carrying a
    non-empty string `identityToken` (D35). Other keys are ignored."""
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidParameter("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidParameter("the body must be a JSON object")
    token = body.get("identityToken")
    if not isinstance(token, str) or not token:
        raise InvalidParameter("identityToken is required: a non-empty string")
    return token


class OperatorBackend:
    """The tokens one operator mock validates; "now" is always `clock.now()`.

    Every seeded player has its token (sliding expiry). `program` adds or replaces a token's
    rule; `reset` restores the seeded ones and forgets what was received.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        seed: int = 42,
        anchor: datetime | None = None,
        token_lifetime_seconds: float = DEFAULT_TOKEN_LIFETIME_SECONDS,
        received_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not math.isfinite(token_lifetime_seconds) or token_lifetime_seconds <= 0:
            raise ValueError("the token lifetime must be a positive number of seconds")
        self.clock = clock
        self.seed = seed
        self.lifetime = timedelta(seconds=token_lifetime_seconds)
        self.data: Dataset = generate(
            seed, anchor=clock.now() if anchor is None else anchor, rounds=0
        )
        self.player_ids = frozenset(self.data.player_by_id)
        self.received = Received(clock, received_size)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rules: dict[str, TokenRule] = {}
        self.reset()

    def reset(self) -> None:
        """Back to one sliding token per seeded player; nothing received."""
        seeded = {
            player.identity_token: TokenRule(player.identity_token, player.player_id, seeded=True)
            for player in self.data.players
        }
        with self._lock:
            self._rules = seeded
        self.received.reset()

    def rules(self) -> list[TokenRule]:
        with self._lock:
            return list(self._rules.values())

    def rule(self, identity_token: str) -> TokenRule | None:
        with self._lock:
            return self._rules.get(identity_token)

    def program(self, body: Mapping[str, Any]) -> TokenRule:
        """Add or replace the rule of `body["identityToken"]` (the admin body, keys checked).

        A `playerId` left out keeps the token's current player; `expiresAt` left out is the
        sliding lifetime, `null` answers none; `status` forces that answer.
        """
        token = body.get("identityToken")
        if not isinstance(token, str) or not token:
            raise ProgramError("identityToken must be a non-empty string")
        current = self.rule(token)
        player_id = body.get("playerId", current.player_id if current else None)
        if player_id is not None and (not isinstance(player_id, str) or not player_id):
            raise ProgramError("playerId must be a non-empty string or null")
        expiry: Expiry = "sliding"
        expires_at = None
        if "expiresAt" in body:
            raw = body["expiresAt"]
            if raw is None:
                expiry = "none"
            elif isinstance(raw, str):
                try:
                    expires_at = parse_rfc3339(raw)
                except ValueError as error:
                    raise ProgramError(f"expiresAt: {error}") from None
                expiry = "fixed"
            else:
                raise ProgramError("expiresAt must be an RFC 3339 date-time string or null")
        status = _json_integer(body.get("status"))
        if status is not None and (isinstance(status, bool) or status not in PROGRAMMABLE_STATUSES):
            allowed = ", ".join(map(str, PROGRAMMABLE_STATUSES))
            raise ProgramError(f"status must be one of {allowed} or null, not {status!r}")
        if status == 200 and player_id is None:
            raise ProgramError("status 200 needs a playerId")
        delay = _json_integer(body.get("delay_ms", 0))
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_MS:
            raise ProgramError(f"delay_ms must be an integer from 0 to {MAX_DELAY_MS}")
        rule = TokenRule(
            token,
            player_id,
            expiry,
            expires_at,
            status,
            delay,
            seeded=current.seeded if current else False,
        )
        with self._lock:
            self._rules[token] = rule
        return rule

    def validate(self, raw: bytes) -> Identity:
        """The answer to `POST /api/auth/v1/player` with body `raw` (D35, D42).

        400: not a JSON object with a non-empty string `identityToken`; 401: an unknown token,
        or one whose fixed `expiresAt` has passed; 404: a known token without a player (a
        programmed player answers 200, seeded or not: D159); a programmed `status` wins over
        all but the 400 (a forced 200 answers the programmed player and expiry as they are).
        A programmed delay is slept before any answer for that token.
        """
        token = parse_identity_request(raw)
        rule = self.rule(token)
        if rule is None:
            raise InvalidToken()
        if rule.delay_ms:
            self._sleep(rule.delay_ms / 1000)
        now = self.clock.now()
        if rule.status == 200 and rule.player_id is not None:
            # Forced: answered as programmed, even an expiresAt in the past, so that a PEP's
            # handling of such answers can be tested.
            return self._identity(rule, now, rule.player_id)
        if rule.status is not None:
            raise FORCED[rule.status]()
        if rule.expiry == "fixed" and rule.expires_at is not None and rule.expires_at <= now:
            raise InvalidToken("the identity token has expired")
        if rule.player_id is None:
            raise PlayerNotFound()
        return self._identity(rule, now, rule.player_id)

    def _identity(self, rule: TokenRule, now: datetime, player_id: str) -> Identity:
        if rule.expiry == "none":
            return Identity(player_id, None)
        if rule.expiry == "fixed":
            return Identity(player_id, rule.expires_at)
        return Identity(player_id, now + self.lifetime)


_PROGRAMMED = "operator.tokens"


def _rule_json(rule: TokenRule) -> dict[str, Any]:
    return {
        "identity_token": rule.identity_token,
        "player_id": rule.player_id,
        "expiry": rule.expiry,
        "expires_at": None if rule.expires_at is None else to_rfc3339(rule.expires_at),
        "status": rule.status,
        "delay_ms": rule.delay_ms,
        "seeded": rule.seeded,
    }


def _rule_of(data: dict[str, Any]) -> TokenRule:
    expires = data["expires_at"]
    return TokenRule(
        data["identity_token"], data["player_id"], data["expiry"],
        None if expires is None else parse_rfc3339(expires), data["status"], data["delay_ms"],
        data["seeded"],
    )


class SharedOperatorBackend(OperatorBackend):
    """An `OperatorBackend` whose programmed tokens and received requests are in a
    `SharedState`: a token programmed through one worker answers on every worker (D205)."""

    def __init__(self, state: SharedState, *, clock: Clock, **kwargs: Any) -> None:
        self._state = state
        self._seen = -1
        self._building = True
        super().__init__(clock=clock, **kwargs)
        self._building = False
        self.received = SharedReceived(state, clock, kwargs.get("received_size", 1000))

    def _sync(self) -> None:
        if self._state.records_generation != self._seen:
            with self._state.lock:
                self._load()

    def _load(self) -> None:
        """The seeded tokens, then every programmed rule in order (hold the state's lock)."""
        generation = self._state.records_generation
        rules = {
            player.identity_token: TokenRule(player.identity_token, player.player_id, seeded=True)
            for player in self.data.players
        }
        for data in self._state.records(_PROGRAMMED):
            rule = _rule_of(data)
            rules[rule.identity_token] = rule
        with self._lock:
            self._rules = rules
        # Only now: a thread that sees this generation must find these rules.
        self._seen = generation

    def reset(self) -> None:
        if self._building and self._state.attached:
            # Another worker's copy may have programmed tokens: loaded on first use (D217).
            super().reset()
            self._seen = -1
            return
        with self._state.lock:
            self._state.clear_records(_PROGRAMMED)
            super().reset()
            self._seen = self._state.records_generation

    def rules(self) -> list[TokenRule]:
        self._sync()
        return super().rules()

    def rule(self, identity_token: str) -> TokenRule | None:
        self._sync()
        return super().rule(identity_token)

    def program(self, body: Mapping[str, Any]) -> TokenRule:
        with self._state.lock:
            self._load()
            rule = super().program(body)
            self._state.add_record(_PROGRAMMED, _rule_json(rule))
            self._seen = self._state.records_generation
        return rule
