"""Socket.IO on the PEP's Flask app: a player's connection gets that player's events only (D70).

python-socketio in threading mode, as WSGI middleware at `/socket.io`, over both of its
transports: HTTP long-polling, and WebSocket (D86, D87) — pepharness's waitress server offers
an upgrade request its connection (`pepharness.mocks.core.server.UPGRADE_SOCKET`), which
`WebSocketGate` hands to python-engineio's simple-websocket driver. A WebSocket handshake that
cannot be served (malformed, or on a server that offers no connection) is a 400 in Engine.IO's
error shape, never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import socketio
from flask import Flask

from pepharness.mocks.core.server import UPGRADE_SOCKET
from pepharness.mocks.core.state import SharedState
from pepharness.mocks.core.traffic import record_connect
from pepharness.mocks.pep.backend import PepBackend
from pepharness.mocks.pep.errors import PepError
from pepharness.mocks.pep.realtime_workers import SidRouter, worker_server

REALTIME_EXTENSION = "pepharness.pep.realtime"
SOCKETIO_PATH = "socket.io"
HEADER_KEY = "HTTP_X_AUTHORIZATION"
REFUSAL = "unauthorized"

Verify = Callable[[str], str | None]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
logger = logging.getLogger("pepharness.pep.realtime")
# Where simple-websocket finds a connection's socket in the WSGI environ (its Server reads
# these, in this order); pepharness's server offers it under UPGRADE_SOCKET instead.
SERVER_SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket", "eventlet.input")


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
        via = "auth"
        if not isinstance(token, str) or not token.strip():
            token, via = environ.get(HEADER_KEY), "x-authorization"
        player_id = self._player(token)
        # python-socketio answers before Flask: the traffic file hears of it from here (D116).
        app = self._app()
        if app is not None:
            record_connect(
                app, token=token if isinstance(token, str) else None, via=via,
                accepted=player_id is not None,
            )
        if player_id is None:
            raise socketio.exceptions.ConnectionRefusedError(REFUSAL)
        self.server.save_session(sid, {"playerId": player_id})
        self.server.enter_room(sid, room_of(player_id))

    def _player(self, token: Any) -> str | None:
        player_id = None
        if isinstance(token, str) and token.strip() and _is_text(token):
            try:
                # The verifier may read the app's extensions, as a view would.
                with self.app.app_context():
                    player_id = self.verify(token)
            except Exception:
                logger.exception("verifying a Socket.IO connection failed")
        return player_id


def _is_text(token: str) -> bool:
    """A credential that UTF-8 can carry and holds no NUL (D81): anything else is refused as
    any bad token is, without reaching the verifier."""
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in token


def _handshake_problem(environ: dict[str, Any]) -> str | None:
    """Why this WebSocket opening handshake (RFC 6455 §4.2.1) cannot be accepted, or None."""
    if environ.get("REQUEST_METHOD") != "GET":
        return "a WebSocket handshake is a GET"
    if not str(environ.get("HTTP_HOST", "")).strip():
        return "a WebSocket handshake needs a Host header"
    if str(environ.get("HTTP_SEC_WEBSOCKET_VERSION", "")).strip() != "13":
        return "Sec-WebSocket-Version must be 13"
    key = str(environ.get("HTTP_SEC_WEBSOCKET_KEY", "")).strip()
    try:
        decoded = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        decoded = b""
    if len(decoded) != 16:
        return "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


def _bad_request(
    start_response: Callable[..., Any], message: str, exc_info: Any = None
) -> list[bytes]:
    """Engine.IO's own 400: `text/plain`, the message as a JSON string."""
    start_response("400 BAD REQUEST", [("Content-Type", "text/plain")], exc_info)
    return [json.dumps(message).encode()]


class WebSocketGate:
    """WSGI middleware in front of python-socketio's app: a WebSocket handshake at
    `/socket.io/` gets the connection pepharness's server offers (as the `gunicorn.socket`
    that python-engineio's threading driver, simple-websocket, reads), or a 400 saying why
    not; everything else passes through untouched."""

    def __init__(self, app: WsgiApp, path: str = SOCKETIO_PATH) -> None:
        self.app = app
        self.prefix = "/" + path.strip("/") + "/"

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not self._is_websocket(environ):
            return self.app(environ, start_response)
        problem = _handshake_problem(environ)
        handed = environ.get(UPGRADE_SOCKET)
        if problem is None and handed is None and not any(
            key in environ for key in SERVER_SOCKET_KEYS
        ):
            problem = "this server cannot hand the connection over to WebSocket"
        if problem is not None:
            return _bad_request(start_response, problem)
        if handed is not None:
            environ["gunicorn.socket"] = handed
        try:
            return self.app(environ, start_response)
        except StopIteration:
            # simple-websocket's way of saying "the WebSocket ended" on gunicorn's socket.
            return []
        except Exception as error:
            if handed is None or getattr(handed, "used", True):
                raise
            # Refused before a byte was sent: still an HTTP exchange, and the client's fault.
            logger.info("a WebSocket handshake was refused: %s", error)
            return _bad_request(start_response, "invalid WebSocket handshake", sys.exc_info())

    def _is_websocket(self, environ: dict[str, Any]) -> bool:
        if not str(environ.get("PATH_INFO", "")).startswith(self.prefix):
            return False
        connection = str(environ.get("HTTP_CONNECTION", "")).lower().split(",")
        upgrade = str(environ.get("HTTP_UPGRADE", "")).strip().lower()
        return upgrade == "websocket" and "upgrade" in {t.strip() for t in connection}


def install_realtime(
    app: Flask,
    verify: Verify,
    *,
    cors_allowed_origins: str | Sequence[str] = "*",
    worker: tuple[SharedState, int] | None = None,
) -> Realtime:
    """Serve Socket.IO at `/socket.io` in front of `app`; `verify(token)` is the player id a
    connection's Frontend JWT opens, or None to refuse it. `worker`: (the shared state, this
    worker's index) when several processes serve the app (D209, D210)."""
    if REALTIME_EXTENSION in app.extensions:
        raise RuntimeError("Socket.IO is installed on this app already")
    origins = (
        cors_allowed_origins
        if isinstance(cors_allowed_origins, str)
        else list(cors_allowed_origins)
    )
    options: dict[str, Any] = {
        "async_mode": "threading", "cors_allowed_origins": origins, "logger": False,
        "engineio_logger": False,
    }
    if worker is None:
        server = socketio.Server(**options)
    else:
        state, index = worker
        server = worker_server(index, os.path.dirname(state.path), **options)
    realtime = Realtime(server, app, verify)
    wsgi: WsgiApp = WebSocketGate(
        socketio.WSGIApp(server, app.wsgi_app, socketio_path=SOCKETIO_PATH)
    )
    if worker is not None:
        wsgi = SidRouter(wsgi, worker[0], worker[1], SOCKETIO_PATH)
    app.wsgi_app = wsgi  # type: ignore[method-assign, assignment]
    app.extensions[REALTIME_EXTENSION] = realtime
    return realtime


def realtime_of(app: Flask) -> Realtime | None:
    """The app's Socket.IO server, if installed."""
    found = app.extensions.get(REALTIME_EXTENSION)
    return found if isinstance(found, Realtime) else None
