"""Socket.IO on the PEP's Flask app: a player's connection gets that player's events only (D70).

python-socketio in threading mode, as WSGI middleware at `/socket.io`. Waitress does no
WebSocket upgrade, so clients talk HTTP long-polling, which Socket.IO clients fall back to.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import socketio
from flask import Flask

from pepharness.mocks.pep.backend import PepBackend
from pepharness.mocks.pep.errors import PepError

REALTIME_EXTENSION = "pepharness.pep.realtime"
SOCKETIO_PATH = "socket.io"
HEADER_KEY = "HTTP_X_AUTHORIZATION"
REFUSAL = "unauthorized"

Verify = Callable[[str], str | None]
logger = logging.getLogger("pepharness.pep.realtime")


def room_of(player_id: str) -> str:
    return f"player:{player_id}"


def frontend_verifier(backend: PepBackend) -> Verify:
    """A `verify` that opens a connection exactly as `x-authorization` opens
    `GET /api/players/v1/me`: the player id of a live session, None otherwise."""

    def verify(token: str) -> str | None:
        # `session` reads a `Bearer ` prefix as the header does.
        try:
            return backend.session(token).player_id
        except PepError:
            return None

    return verify


class Realtime:
    """The Socket.IO server of one app; `publish` emits to one player's connections."""

    def __init__(self, server: socketio.Server, app: Flask, verify: Verify) -> None:
        self.server = server
        # Weak: the engine's thread holds `publish`, and must not keep a dropped app alive.
        self._app = weakref.ref(app)
        self.verify = verify
        server.on("connect", self._connect)

    @property
    def app(self) -> Flask:
        app = self._app()
        if app is None:
            raise LookupError("the app of this Socket.IO server is gone")
        return app

    def publish(self, player_id: str, event: str, data: dict[str, Any]) -> None:
        """Emit `event` with `data` to every connection of `player_id` (none: nothing)."""
        self.server.emit(event, data, to=room_of(player_id))

    def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token.strip():
            token = environ.get(HEADER_KEY)
        player_id = None
        if isinstance(token, str) and token.strip():
            try:
                # The verifier may read the app's extensions, as a view would.
                with self.app.app_context():
                    player_id = self.verify(token)
            except Exception:
                logger.exception("verifying a Socket.IO connection failed")
        if player_id is None:
            raise socketio.exceptions.ConnectionRefusedError(REFUSAL)
        self.server.save_session(sid, {"playerId": player_id})
        self.server.enter_room(sid, room_of(player_id))


def install_realtime(
    app: Flask, verify: Verify, *, cors_allowed_origins: str | Sequence[str] = "*"
) -> Realtime:
    """Serve Socket.IO at `/socket.io` in front of `app`; `verify(token)` is the player id a
    connection's Frontend JWT opens, or None to refuse it."""
    if REALTIME_EXTENSION in app.extensions:
        raise RuntimeError("Socket.IO is installed on this app already")
    origins = (
        cors_allowed_origins
        if isinstance(cors_allowed_origins, str)
        else list(cors_allowed_origins)
    )
    server = socketio.Server(
        async_mode="threading", cors_allowed_origins=origins, logger=False, engineio_logger=False
    )
    realtime = Realtime(server, app, verify)
    app.wsgi_app = socketio.WSGIApp(  # type: ignore[method-assign]
        server, app.wsgi_app, socketio_path=SOCKETIO_PATH
    )
    app.extensions[REALTIME_EXTENSION] = realtime
    return realtime


def realtime_of(app: Flask) -> Realtime | None:
    """The app's Socket.IO server, if installed."""
    found = app.extensions.get(REALTIME_EXTENSION)
    return found if isinstance(found, Realtime) else None
