"""The Frontend gateway's reads of the reactive engine: missions, the XP leaderboard and
notifications of the player an `x-authorization` token opens (D66-D69)."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from pepharness.mocks.pep.backend import PepBackend
from pepharness.mocks.pep.engine import ENGINE_EXTENSION, ReactiveEngine
from pepharness.mocks.pep.errors import InvalidRequest

AUTH_HEADER = "x-authorization"
BACKEND_EXTENSION = "pepharness.pep"  # app.EXTENSION: app.py imports this module
DEFAULT_LEADERBOARD_LIMIT = 25
MAX_LEADERBOARD_LIMIT = 100

reads = Blueprint("reads", __name__)


def engine_of(app: Flask | None = None) -> ReactiveEngine:
    """The reactive engine of `app` (the current app by default)."""
    engine = (app or current_app).extensions.get(ENGINE_EXTENSION)
    if not isinstance(engine, ReactiveEngine):
        raise LookupError("this PEP app has no reactive engine")
    return engine


def _player_id() -> str:
    """The player of the request's token; 401 exactly as `GET /api/players/v1/me`."""
    backend = current_app.extensions.get(BACKEND_EXTENSION)
    if not isinstance(backend, PepBackend):
        raise LookupError("not a PEP app: build it with create_app()")
    return backend.session(request.headers.get(AUTH_HEADER)).player_id


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LEADERBOARD_LIMIT
    # isdigit and a length bound first: int() is then cheap and never sees a sign or a space.
    if not (
        raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LEADERBOARD_LIMIT
    ):
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LEADERBOARD_LIMIT}")
    return int(raw)


@reads.get("/api/missions/v1/missions")
def missions() -> ResponseReturnValue:
    player_id = _player_id()
    return jsonify(missions=engine_of().missions(player_id))


@reads.get("/api/leaderboards/v1/xp")
def xp_leaderboard() -> ResponseReturnValue:
    player_id = _player_id()
    limit = _limit(request.args.get("limit"))
    return jsonify(limit=limit, **engine_of().leaderboard(player_id, limit))


@reads.get("/api/notifications/v1/notifications")
def notifications() -> ResponseReturnValue:
    player_id = _player_id()
    return jsonify(notifications=engine_of().notifications(player_id))
