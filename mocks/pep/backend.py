"""The reference PEP's rules: who may start a session, what the token says, who it opens."""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from pepharness.fixtures import generate
from pepharness.mocks.core.clock import Clock, to_rfc3339
from pepharness.mocks.core.state import SharedDraws
from pepharness.mocks.pep import errors
from pepharness.mocks.pep.engine_config import EngineConfig
from pepharness.mocks.pep.operator_client import OperatorClient
from pepharness.mocks.pep.players import Players
from pepharness.mocks.pep.store import ApiClient, ClientSpec, PlayerSession, Store
from pepharness.mocks.pep.tokens import AccessClaims, AccessTokens, InvalidAccessToken

FRONTEND = "frontend"
DEFAULT_SESSION_LIFETIME_SECONDS = 3600
TOKEN_TYPE = "Bearer"
JTI_ATTEMPTS = 1000


@dataclass(frozen=True)
class Grant:
    """A started session: the access token and what it says."""

    access_token: str
    session: PlayerSession

    def to_json(self) -> dict[str, Any]:
        lifetime = self.session.expires_at - self.session.issued_at
        return {
            "accessToken": self.access_token,
            "tokenType": TOKEN_TYPE,
            "expiresAt": to_rfc3339(self.session.expires_at),
            "expiresIn": int(lifetime.total_seconds()),
            "playerId": self.session.player_id,
        }


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def parse_auth_request(raw: bytes) -> tuple[str, str]:
    """(identityToken, clientId) of a session request; 400 unless the body is a JSON object
    with both as non-empty strings (other keys are ignored)."""
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise errors.InvalidRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the body must be a JSON object")
    for key in ("identityToken", "clientId"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise errors.InvalidRequest(f"{key} is required: a non-empty string")
    return body["identityToken"], body["clientId"]


def bearer_value(header: str | None) -> str | None:
    """The token of an `x-authorization` header: the JWT itself, a `Bearer ` prefix allowed."""
    if header is None or not header.strip():
        return None
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else value


def _whole_second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


class PepBackend:
    """Sessions of one reference PEP; "now" is always `clock.now()`, state is in `store`."""

    def __init__(
        self,
        *,
        clock: Clock,
        store: Store,
        operator: OperatorClient,
        tokens: AccessTokens,
        clients: Sequence[ClientSpec],
        seed: int = 42,
        anchor: datetime | None = None,
        session_lifetime_seconds: float = DEFAULT_SESSION_LIFETIME_SECONDS,
        engine_config: EngineConfig | None = None,
    ) -> None:
        if not math.isfinite(session_lifetime_seconds) or session_lifetime_seconds < 1:
            raise ValueError("the session lifetime must be at least one second")
        self.clock = clock
        self.store = store
        self.operator = operator
        self.tokens = tokens
        self.clients = tuple(clients)
        self.seed = seed
        self.lifetime = timedelta(seconds=int(session_lifetime_seconds))
        data = generate(seed, anchor=clock.now() if anchor is None else anchor, rounds=0)
        # The reactive engine's configuration is the players' one rank model (D89).
        self.players = Players(seed, data.player_by_id, engine_config)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._resets: list[Callable[[], None]] = []
        self.shared_draws: SharedDraws | None = None
        """The session ids' seeded sequence when several workers draw from it (D208)."""
        store.seed_clients(self.clients)

    def on_reset(self, reset: Callable[[], None]) -> None:
        """Also call `reset` on `reset()` (the Platform gateway's state, the engine's)."""
        self._resets.append(reset)

    def reset(self) -> None:
        """No session, the configured clients only, the id source back at its seed, and every
        other part registered with `on_reset` back to its start."""
        self.store.reset(self.clients)
        with self._lock:
            self._random = random.Random(self.seed)
        if self.shared_draws is not None:
            self.shared_draws.reset()
        for reset in self._resets:
            reset()

    def _draw_jti(self) -> str:
        if self.shared_draws is not None:
            return f"{self.shared_draws.next():032x}"
        with self._lock:
            return f"{self._random.getrandbits(128):032x}"

    def frontend_client(self, client_id: str) -> ApiClient:
        client = self.store.client(client_id)
        if client is None or not client.allows(FRONTEND):
            raise errors.InvalidClient()
        return client

    def start_session(self, raw: bytes) -> Grant:
        """`POST /api/auth/v1/player`: 400 for a bad body, 401 for an unknown client (the
        operator is not called), then the operator's answer mapped (D45), then a token whose
        `exp` never outlives the operator's `expiresAt` (D46)."""
        identity_token, client_id = parse_auth_request(raw)
        client = self.frontend_client(client_id)
        identity = self.operator.validate(identity_token)
        issued = _whole_second(self.clock.now())
        expires = issued + self.lifetime
        if identity.expires_at is not None:
            # JWT times are whole seconds: rounding down keeps exp <= expiresAt.
            capped = _whole_second(identity.expires_at)
            if capped <= issued:
                raise errors.IdentityTokenExpired()
            expires = min(expires, capped)
        for _ in range(JTI_ATTEMPTS):
            session = PlayerSession(
                jti=self._draw_jti(),
                player_id=identity.player_id,
                client_id=client.client_id,
                issued_at=issued,
                expires_at=expires,
                operator_expires_at=identity.expires_at,
            )
            # The same seed draws the same ids: a database kept across restarts has them.
            if self.store.add_session(session):
                break
        else:
            raise RuntimeError("no free session id after many draws")
        claims = AccessClaims(session.jti, session.player_id, session.client_id, issued, expires)
        return Grant(self.tokens.issue(claims), session)

    def session(self, header: str | None) -> PlayerSession:
        """The session an `x-authorization` header opens: 401 when it is missing, or not a
        token we issued for `pep-frontend`, unexpired on the service clock and still stored."""
        token = bearer_value(header)
        if token is None:
            raise errors.MissingToken()
        try:
            claims = self.tokens.verify(token, self.clock.now())
        except InvalidAccessToken:
            raise errors.InvalidAccessToken() from None
        stored = self.store.session(claims.jti)
        if (
            stored is None
            or stored.player_id != claims.player_id
            or stored.client_id != claims.client_id
        ):
            raise errors.InvalidAccessToken()
        return stored

    def end_session(self, header: str | None) -> None:
        """`DELETE /api/auth/v1/session`: the token stops working at once."""
        self.store.delete_session(self.session(header).jti)

    def player(self, session: PlayerSession) -> dict[str, Any]:
        return self.players.document(session.player_id)
